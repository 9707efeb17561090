"""Toxiproxy in front of in-cluster service addresses, so network faults are real TCP
behaviour (latency, timeouts, resets, partitions) between a client and a component.

The service map sends the in-cluster Vault address through the `vault` proxy; without a
toxic the proxy is transparent. Proxies are created at start from a config file, so a
restarted toxiproxy comes back with the same listeners.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.vault import Vault, vault_service_aliases
from harness.errors import HarnessError
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ProcessSpec


class Toxiproxy(Component):
    name = "netfault"
    requires = ("vault",)
    port_names = ("netfault.api", "netfault.vault")
    toolchain = ("toxiproxy",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('netfault.api')}"

    def proxy_address(self, target: str) -> str:
        """host:port clients use to reach `target` through the proxy."""
        return f"127.0.0.1:{self.ctx.port(f'netfault.{target}')}"

    def upstreams(self) -> dict[str, str]:
        return {"vault": hostport(self.ctx.require(Vault).address)}

    def service_aliases(self) -> dict[str, str]:
        """Vault's in-cluster addresses lead through the proxy, so faults can be
        injected (it starts after Vault: its aliases override Vault's own)."""
        return vault_service_aliases(self.proxy_address("vault"), self.ctx.require(Vault).tls)

    def write_files(self) -> None:
        config = [{"name": name, "listen": self.proxy_address(name), "upstream": upstream,
                   "enabled": True} for name, upstream in self.upstreams().items()]
        path = self.ctx.state.root / "netfault" / "proxies.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))

    def process_specs(self) -> list[ProcessSpec]:
        argv = [self.bin("toxiproxy", "toxiproxy-server"), "-host", "127.0.0.1",
                "-port", str(self.ctx.port("netfault.api")),
                "-config", str(self.ctx.state.root / "netfault" / "proxies.json")]
        return [self.spec("toxiproxy", argv, http_ok(f"{self.address}/version"))]

    # ---- the toxiproxy API -------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.address}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise HarnessError(f"toxiproxy {method} {path}: {exc.code} "
                               f"{exc.read().decode(errors='replace')}") from exc
        return json.loads(raw) if raw.strip() else None

    def add_toxic(self, proxy: str, name: str, kind: str, attributes: dict,
                  stream: str = "downstream") -> None:
        self.api("POST", f"/proxies/{proxy}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": 1.0,
            "attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.api("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.api("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self.api("POST", "/reset")
