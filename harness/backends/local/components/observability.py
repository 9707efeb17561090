"""Prometheus and Alertmanager (Debian binaries) with the harness's webhook receiver.

Prometheus scrapes what the environment runs — every Vault node as `job="vault"` (its
/v1/sys/metrics, with a token whose policy can read nothing else), the ESO controller,
kube-apiserver — and evaluates the customer's rules, time-scaled by
`settings.time_scale` (`for: 5m` at scale 60 is 5 s; scrape and evaluation intervals
follow, never below 1 s). Alertmanager routes everything to the receiver, which records
each notification for assertions. Alertmanager's gossip port (default 0.0.0.0:9094) is
switched off: every listener stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.backends.local.components.base import Component
from harness.backends.local.components.kube import Kube
from harness.backends.local.components.vault import Vault
from harness.clients.prometheus import PrometheusAPI
from harness.rules import (
    BASE_SCRAPE,
    format_duration,
    load_rule_documents,
    scaled_groups,
)
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ProcessSpec

BASE_GROUP_WAIT = 30.0  # Alertmanager's default group_wait


def scaled(seconds: float, factor: float, floor: float = 1.0) -> str:
    return format_duration(max(floor, seconds / factor))


class Alertmanager(Component):
    name = "alertmanager"
    port_names = ("alertmanager.web", "alertmanager.receiver")
    toolchain = ("alertmanager",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('alertmanager.web')}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('alertmanager.receiver')}/alerts"

    @property
    def received_file(self) -> Path:
        return self.ctx.state.root / "alerts" / "received.jsonl"

    @property
    def config_file(self) -> Path:
        return self.ctx.state.root / "alertmanager" / "alertmanager.yml"

    def endpoints(self) -> dict[str, str]:
        return {"alertmanager": self.address, "alert-receiver": self.receiver_url}

    def write_files(self) -> None:
        factor = self.ctx.settings.time_scale
        config = {
            "route": {"receiver": "harness", "group_by": ["alertname"],
                      "group_wait": scaled(BASE_GROUP_WAIT, factor, 0.5),
                      "group_interval": scaled(300, factor),
                      "repeat_interval": "4h",
                      "routes": [{"receiver": "harness",
                                  "matchers": ['severity=~"critical|warning|"']}]},
            "receivers": [{"name": "harness", "webhook_configs": [
                {"url": self.receiver_url, "send_resolved": True}]}],
        }
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def process_specs(self) -> list[ProcessSpec]:
        port = self.ctx.port("alertmanager.receiver")
        receiver = self.spec(
            "alert-receiver", [sys.executable, "-m", "harness.daemons.receiver",
                               "--listen", f"127.0.0.1:{port}",
                               "--out", str(self.received_file)],
            http_ok(f"http://127.0.0.1:{port}/healthz"))
        am = self.spec(
            "alertmanager", [self.bin("alertmanager", "alertmanager"),
                             f"--config.file={self.config_file}",
                             f"--storage.path={self.ctx.state.data('alertmanager')}",
                             f"--web.listen-address=127.0.0.1:{self.ctx.port('alertmanager.web')}",
                             "--cluster.listen-address="],
            http_ok(f"{self.address}/-/ready"), data_dir=self.ctx.state.data("alertmanager"),
            after=())  # it posts to the receiver only when an alert fires
        return [receiver, am]

    def notifications(self) -> list[dict]:
        if not self.received_file.exists():
            return []
        return [json.loads(line) for line in self.received_file.read_text().splitlines()
                if line.strip()]


class Prometheus(PrometheusAPI, Component):
    name = "prometheus"
    requires = ("alertmanager",)
    # Its rules include the cluster's PrometheusRules, and its scrape jobs name the
    # control plane's client certificate: both exist once Kubernetes is up.
    start_after = ("kube",)
    port_names = ("prometheus.web",)
    toolchain = ("prometheus",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('prometheus.web')}"

    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "prometheus"

    @property
    def rules_dir(self) -> Path:
        return self._dir / "rules"

    @property
    def scrape_interval(self) -> str:
        return scaled(BASE_SCRAPE, self.ctx.settings.time_scale)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.extra_rule_sources: list[Path] = []  # set by scenarios, then reload()

    def rule_sources(self) -> list[Path]:
        """The customer's rule files: fixtures/observability (rule files and
        PrometheusRule manifests), those of the environment's components (the database's
        backup alerts), plus any a scenario adds."""
        own = [f for comp in self.ctx.components.values() for f in comp.rule_files()]
        return [self.ctx.settings.fixtures_dir / "observability", *own,
                *self.extra_rule_sources]

    def install(self) -> None:
        """Rules come from files and from PrometheusRule objects in the cluster."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self.write_rules(self.rule_sources())
        self.write_config()

    def cluster_rule_documents(self) -> list[tuple[str, dict]]:
        """PrometheusRule objects in the cluster, when their CRD is installed."""
        kube = self.ctx.optional(Kube)
        if kube is None:
            return []
        from kubernetes import client

        api = client.CustomObjectsApi(kube.api_client())
        try:
            listed: dict = api.list_cluster_custom_object(  # type: ignore[assignment]
                "monitoring.coreos.com", "v1", "prometheusrules")
            items = listed["items"]
        except client.ApiException as exc:
            if exc.status == 404:  # CRD not installed
                return []
            raise
        return [(f"PrometheusRule/{i['metadata']['namespace']}/{i['metadata']['name']}",
                 {"groups": i.get("spec", {}).get("groups", [])}) for i in items]

    def write_rules(self, sources: list[Path]) -> None:
        """Scaled copies of every rule document into the rules dir (originals untouched):
        rule files, PrometheusRule manifests, and PrometheusRule objects in the cluster."""
        self.rules_dir.mkdir(parents=True, exist_ok=True)
        for old in self.rules_dir.glob("*.yml"):
            old.unlink()
        existing = [s for s in sources if s.exists()]
        docs = (load_rule_documents(existing) if existing else []) + \
            self.cluster_rule_documents()
        for i, (source, doc) in enumerate(docs):
            out = scaled_groups(doc, self.ctx.settings.time_scale)
            header = (f"# scaled x{self.ctx.settings.time_scale:g} from {source}\n")
            stem = Path(source).stem.replace("/", "-")
            (self.rules_dir / f"{i:02d}-{stem}.yml").write_text(
                header + yaml.safe_dump(out, sort_keys=False))

    def write_config(self) -> None:
        """prometheus.yml: every component's own scrape jobs, time-scaled intervals."""
        factor = self.ctx.settings.time_scale
        interval = self.scrape_interval
        scrape = [job for comp in self.ctx.components.values() for job in comp.scrape_jobs()]
        am = self.ctx.require(Alertmanager)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "scrape_timeout": scaled(10, factor, 0.8)},
            "rule_files": [str(self.rules_dir / "*.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [hostport(am.address)]}]}]},
            "scrape_configs": scrape,
        }
        (self._dir / "prometheus.yml").write_text(
            f"# time scale x{factor:g}: scrape/evaluation every {interval} "
            f"(unscaled {format_duration(BASE_SCRAPE)})\n"
            + yaml.safe_dump(config, sort_keys=False))

    def process_specs(self) -> list[ProcessSpec]:
        data = self.ctx.state.data("prometheus")
        argv = [self.bin("prometheus", "prometheus"),
                f"--config.file={self._dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.ctx.port('prometheus.web')}",
                "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d"]
        return [self.spec("prometheus", argv, http_ok(f"{self.address}/-/ready"),
                          data_dir=data)]

    def configure(self) -> None:
        """Attached to a running environment that gains components (backup, Argo CD...):
        their targets are scraped too — the config is rewritten, and reloaded only when
        it changed."""
        path = self._dir / "prometheus.yml"
        before = path.read_text() if path.exists() else None
        self.write_config()
        if path.read_text() != before:
            self.reload()

    def reload(self) -> None:
        """Rewrite config + rules and ask Prometheus to reload them; the Vault scrape
        token is minted again if Vault forgot it (a dev server restarted in memory)."""
        import urllib.request

        if (vault := self.ctx.optional(Vault)) is not None:
            vault.ensure_metrics_token()
        self.write_rules(self.rule_sources())
        self.write_config()
        req = urllib.request.Request(f"{self.address}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass
