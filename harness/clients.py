"""Client-side operations shared by every backend: what a test does to Vault and asks of
Prometheus is the same whether the server is a local process or a pod in someone's
cluster. Components (local backend) and the remote adapters (existing/kind backends)
both mix these in; each supplies only how to reach its server."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from harness.errors import HarnessError
from harness.runtime.redact import REDACTOR, secret_values


class VaultAdmin:
    """The runbook's `vault kv ...`, `vault policy write`, `vault write auth/...`."""

    def client(self, token: str | None = None, url: str | None = None) -> Any:
        raise NotImplementedError

    def after_auth_write(self, mount: str) -> None:
        """Hook: make a kubernetes-auth change effective everywhere (see Vault)."""

    def write_policy(self, name: str, hcl: str) -> None:
        self.client().sys.create_or_update_policy(name=name, policy=hcl)

    def write_kubernetes_role(self, role: str, service_account: str, namespace: str,
                              policies: list[str], ttl: str = "1h",
                              mount: str = "kubernetes") -> None:
        self.client().write_data(f"auth/{mount}/role/{role}", data={
            "bound_service_account_names": service_account,
            "bound_service_account_namespaces": namespace,
            "policies": ",".join(policies), "ttl": ttl})
        self.after_auth_write(f"{mount}/")  # standbys cache roles as well

    def delete_kubernetes_role(self, role: str, mount: str = "kubernetes") -> None:
        self.client().delete(f"auth/{mount}/role/{role}")

    def kv_put(self, path: str, /, mount_point: str = "secret", **values: str) -> None:
        """`vault kv put <mount>/<path> k=v ...` (KV v2); the values become redacted."""
        REDACTOR.add(*secret_values(values))
        self.client().secrets.kv.v2.create_or_update_secret(
            path=path, secret=values, mount_point=mount_point)

    def kv_delete_tree(self, prefix: str, mount_point: str = "secret") -> None:
        """Delete every key (all versions) under prefix/."""
        import hvac

        kv = self.client().secrets.kv.v2
        try:
            keys = kv.list_secrets(path=prefix, mount_point=mount_point)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return
        for key in keys:
            if key.endswith("/"):
                self.kv_delete_tree(f"{prefix}/{key.rstrip('/')}", mount_point)
            else:
                kv.delete_metadata_and_all_versions(path=f"{prefix}/{key}",
                                                    mount_point=mount_point)

    def kv_get(self, path: str, mount_point: str = "secret") -> dict[str, str] | None:
        import hvac

        try:
            data = self.client().secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount_point, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return dict(data["data"]["data"])


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

    def wait_first_scrapes(self) -> None:
        """Every target scraped at least once: before that, metric names are missing
        for lack of time, not because a rule is dead."""
        from harness.rules import parse_duration
        from harness.runtime.probes import http_get

        deadline = time.monotonic() + 2 * parse_duration(self.scrape_interval) + 10
        while True:
            _s, body = http_get(f"{self.address}/api/v1/targets")
            targets = json.loads(body)["data"]["activeTargets"]
            pending = [t["labels"].get("job") for t in targets if t["health"] == "unknown"]
            if targets and not pending:
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"Prometheus has not scraped {pending or 'any target'} "
                                   "yet; try again in a moment")
            time.sleep(0.5)

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
