"""Prometheus' HTTP API, on any backend: instant queries, metric names, alerts. The
local Prometheus component and the remote adapter mix this in."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import datetime

from harness.errors import HarnessError
from harness.wait import eventually


def scraped_at(rfc3339: str) -> float:
    """A target's `lastScrape` as a Unix time (0 when absent): Prometheus writes it in
    its local zone with nanoseconds, which fromisoformat takes only cut to microseconds."""
    m = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        return 0.0
    fraction = f".{m.group(2)[:6]:0<6}" if m.group(2) else ""
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + fraction + zone).timestamp()


class PrometheusAPI:
    """Prometheus' HTTP API: instant queries, metric names, alerts."""

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def scrape_interval(self) -> str:
        return "15s"  # Prometheus' default

    def query(self, promql: str) -> list[dict]:
        """Instant query; the result vector."""
        from harness.runtime.probes import http_get

        status, body = http_get(f"{self.address}/api/v1/query?"
                                + urllib.parse.urlencode({"query": promql}))
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise HarnessError(f"Prometheus query {promql!r} failed: {data.get('error')}")
        return list(data["data"]["result"])

    def wait_first_scrapes(self, since: float | None = None) -> None:
        """Every target scraped at least once (after the Unix time `since`, when given):
        before that, metric names are missing for lack of time, not because a rule is
        dead — a metric ESO exposes only once an ExternalSecret is reconciled included."""
        from harness.rules import parse_duration
        from harness.runtime.probes import http_get

        def after(t: dict) -> bool:
            return since is None or scraped_at(t.get("lastScrape", "")) > since

        def scraped() -> bool:
            _s, body = http_get(f"{self.address}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            pending = [t["labels"].get("job") for t in targets
                       if t["health"] == "unknown" or not after(t)]
            if targets and not pending:
                return True
            raise AssertionError(f"not scraped yet: {pending or 'any target'}")

        eventually(scraped, timeout=2 * parse_duration(self.scrape_interval) + 10,
                   interval=0.5, error=HarnessError, retry_on=(AssertionError,),
                   description="Prometheus scraped every target once (try again in a moment)")

    def live_metric_names(self) -> set[str]:
        """Names of every metric a scraped target exposes now."""
        from harness.runtime.probes import http_get

        self.wait_first_scrapes()
        status, body = http_get(f"{self.address}/api/v1/label/__name__/values")
        if status != 200:
            raise HarnessError(f"Prometheus answered {status} for metric names")
        return set(json.loads(body)["data"])

    def alerts(self) -> list[dict]:
        from harness.runtime.probes import http_get

        _status, body = http_get(f"{self.address}/api/v1/alerts")
        return list(json.loads(body)["data"]["alerts"])
