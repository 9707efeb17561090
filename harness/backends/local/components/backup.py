"""Automatic snapshots (prod: "backups", "automatic snapshots"): the scheduler process of
harness.daemons.backup_scheduler, with a snapshot-only Vault token and retention. Snapshots land in
`<state>/backups/scheduled/`; Prometheus scrapes its metrics (job "backup")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.etcd import Etcd
from harness.backends.local.components.vault import Vault
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ProcessSpec

POLICY = "heracles-backup"
POLICY_HCL = 'path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n'


class Backup(Component):
    name = "backup"
    requires = ("etcd", "vault")
    port_names = ("backup.metrics",)
    toolchain = ("etcd",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('backup.metrics')}/metrics"

    def scrape_jobs(self) -> list[dict[str, Any]]:
        return [{"job_name": "backup", "static_configs": [
            {"targets": [hostport(self.address)]}]}]

    @property
    def directory(self) -> Path:
        return self.ctx.state.root / "backups" / "scheduled"

    @property
    def token_file(self) -> Path:
        return self.ctx.state.root / "backup" / "vault-token"

    def secret_files(self) -> list[Path]:
        return [self.token_file]

    def install(self) -> None:
        vault = self.ctx.require(Vault)
        if not vault.ha:
            raise HarnessError("scheduled snapshots need raft storage: use the prod or "
                               "staging profile")
        if not self.token_file.exists():
            vault.write_policy(POLICY, POLICY_HCL)
            token = vault.client().auth.token.create(
                policies=[POLICY], no_parent=True, period="768h",
                display_name="heracles-backup")["auth"]["client_token"]
            self.token_file.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.token_file, token.encode())
        self.register_secrets()

    def process_specs(self) -> list[ProcessSpec]:
        vault, etcd = self.ctx.require(Vault), self.ctx.require(Etcd)
        settings = self.ctx.settings
        argv = [sys.executable, "-m", "harness.daemons.backup_scheduler", f"--dir={self.directory}",
                f"--interval={settings.backup_interval:g}", f"--keep={settings.backup_keep}",
                f"--metrics-port={self.ctx.port('backup.metrics')}",
                f"--vault-address={vault.address}", f"--vault-ca={self.ctx.pki.ca_cert}",
                f"--vault-token-file={self.token_file}",
                f"--etcdctl={self.bin('etcd', 'etcdctl')}", f"--etcd-endpoint={etcd.address}"]
        return [self.spec("backup", argv, http_ok(self.address))]

    def snapshots(self, kind: str) -> list[Path]:
        from harness.daemons.backup_scheduler import existing

        return existing(self.directory, kind)
