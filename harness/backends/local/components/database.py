"""The platform's database (prod; staging with `--components db`): PostgreSQL 15 on
127.0.0.1, archiving every WAL segment to region A's S3 store with pgBackRest (its
`archive_command`), and the backup agent (harness.daemons.db_agent) taking scheduled
base backups, measuring the replication lag to region B, following credential rotations
and exposing it all to Prometheus (job "db-backup").

Its superuser password (database/postgres-credentials) and the repository's S3 keys
(database/backup-credentials) come from Vault through ESO.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.kube import Kube
from harness.backends.local.components.objectstore import REGIONS, ObjectStore
from harness.db import credentials
from harness.db.config import BUCKET, STANZA, RepoConfig
from harness.db.postgres import SUPERUSER, apply_login, as_db_user, connect, socket_dir
from harness.db.tools import PgBackRest
from harness.errors import HarnessError
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ProcessSpec

ARCHIVE_TIMEOUT = 10.0  # seconds: a quiet database still ships a segment this often


class Database(Component):
    name = "db"
    requires = ("s3",)
    port_names = ("db.postgres", "db.metrics")
    toolchain = ("postgresql", "pgbackrest")

    @property
    def port(self) -> int:
        return self.ctx.port("db.postgres")

    @property
    def address(self) -> str:
        return f"postgresql://127.0.0.1:{self.port}/postgres"

    @property
    def metrics_address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('db.metrics')}/metrics"

    def endpoints(self) -> dict[str, str]:
        return {"postgres": self.address, "db-backup": self.metrics_address}

    def scrape_jobs(self) -> list[dict[str, Any]]:
        return [{"job_name": "db-backup",
                 "static_configs": [{"targets": [hostport(self.metrics_address)]}]}]

    def rule_files(self) -> list[Path]:
        return [self.ctx.settings.fixtures_dir / "database" / "database.rules.yaml"]

    def service_aliases(self) -> dict[str, str]:
        return {"postgres.database.svc.cluster.local:5432": f"127.0.0.1:{self.port}"}

    # ---- paths -------------------------------------------------------------------------
    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "db"

    @property
    def data_dir(self) -> Path:
        return self.ctx.state.data("postgres")

    @property
    def socket(self) -> Path:
        return socket_dir(self.ctx.state.root)

    def temp_paths(self) -> list[Path]:
        """The socket directory, when the state directory is too long for a socket
        address and it lives in the temp dir (heracles-pg-<hash>)."""
        sock = self.socket
        return [] if self.ctx.state.root in sock.parents else [sock]

    @property
    def pgbackrest_config(self) -> Path:
        return self._dir / "pgbackrest.conf"

    @property
    def agent_config(self) -> Path:
        return self._dir / "agent.json"

    def repo_config(self) -> RepoConfig:
        store = self.ctx.require(ObjectStore)
        return RepoConfig(s3_port=store.s3_port("region-a"), ca_file=self.ctx.pki.ca_cert,
                          pg_data=self.data_dir, pg_port=self.port, pg_socket=self.socket,
                          work_dir=self._dir / "pgbackrest",
                          archive_timeout=ARCHIVE_TIMEOUT)

    def tool(self) -> PgBackRest:
        return PgBackRest(self.bin("pgbackrest", "pgbackrest"), self.pgbackrest_config)

    # ---- lifecycle ---------------------------------------------------------------------
    def write_files(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self.socket.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.clear_stale_locks()

    def initdb(self) -> None:
        """A new cluster: local socket trusted (the directory is the environment's own),
        TCP only with the password ESO delivers (scram-sha-256)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = as_db_user([self.bin("postgresql", "initdb"), "-D", str(self.data_dir),
                           "-U", SUPERUSER, "--auth-local=trust",
                           "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                           "--no-sync"])
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise HarnessError(f"initdb {self.data_dir} failed: {out.stderr.strip()[-500:]}")

    def install(self) -> None:
        """A cluster when there is none (initdb); pgbackrest.conf from the backup keys
        ESO delivered; the agent's config."""
        from kubernetes import client

        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()

        core = client.CoreV1Api(self.ctx.require(Kube).api_client())
        keys = credentials.backup_keys(core)
        repo = self.repo_config()
        repo.write(self.pgbackrest_config, keys)
        store = self.ctx.require(ObjectStore)
        settings = self.ctx.settings
        conf = {
            "pgbackrest": self.bin("pgbackrest", "pgbackrest"),
            "pgbackrest_config": str(self.pgbackrest_config),
            "repo": repo.to_json(),
            "interval": settings.db_backup_interval,
            "lag_objective": settings.db_lag_objective,
            "metrics_port": self.ctx.port("db.metrics"),
            "kubeconfig": self.ctx.require(Kube).kubeconfig_path("admin"),
            "bucket": BUCKET,
            "filer_a": store.filer_url("region-a"), "filer_b": store.filer_url("region-b"),
            "identities": {r: str(store.identities_file(r)) for r in REGIONS},
            "store_processes": {r: store.process_name(r) for r in REGIONS},
        }
        self.agent_config.write_text(json.dumps(conf, indent=2))

    def postgres_spec(self) -> ProcessSpec:
        pg_isready = self.bin("postgresql", "pg_isready")
        sock, port = str(self.socket), str(self.port)

        def ready() -> bool:
            return subprocess.run([pg_isready, "-q", "-h", sock, "-p", port, "-U", SUPERUSER],
                                  check=False, timeout=5).returncode == 0

        argv = as_db_user([
            self.bin("postgresql", "postgres"), "-D", str(self.data_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
            "-c", f"unix_socket_directories={sock}",
            "-c", "wal_level=replica", "-c", "archive_mode=on",
            "-c", f"archive_command={self.tool().archive_command()}",
            "-c", f"archive_timeout={ARCHIVE_TIMEOUT:g}",
            "-c", "password_encryption=scram-sha-256",
            "-c", "max_wal_size=1GB", "-c", "logging_collector=off",
        ])
        spec = self.spec("postgres", argv, ready, data_dir=self.data_dir)
        spec.stop_signal = signal.SIGINT
        return spec

    def process_specs(self) -> list[ProcessSpec]:
        agent = [sys.executable, "-m", "harness.daemons.db_agent",
                 f"--config={self.agent_config}"]
        # The agent starts once the repository is ready for its first base backup.
        return [self.postgres_spec(),
                self.spec("db-agent", agent, http_ok(self.metrics_address),
                          after=("repository",))]

    def start_steps(self) -> dict[str, Any]:
        return {"repository": (("postgres",), self.prepare_repository)}

    def prepare_repository(self) -> None:
        """The stanza (idempotent) and one archive round trip (`pgbackrest check`)."""
        tool = self.tool()
        tool.stanza_create()
        tool.check()

    def clear_stale_locks(self) -> None:
        """A killed server's lock files (socket and data directory) name a pid that is
        gone — or a zombie nobody has reaped yet, which PostgreSQL takes for a live
        postmaster and refuses to start beside: found when a server killed -9 was
        restored and started at once."""
        import psutil

        sock = self.socket / f".s.PGSQL.{self.port}"
        for lock in (Path(f"{sock}.lock"), self.data_dir / "postmaster.pid"):
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                alive = False
            if not alive:
                lock.unlink(missing_ok=True)
                if lock.name.endswith(".lock"):
                    sock.unlink(missing_ok=True)

    def start_process(self, name: str) -> Any:
        if name == "postgres":
            self.clear_stale_locks()
        return super().start_process(name)

    def configure(self) -> None:
        """The superuser's password from ESO."""
        self.apply_login()

    def apply_login(self) -> None:
        from kubernetes import client

        login = credentials.db_login(client.CoreV1Api(self.ctx.require(Kube).api_client()))
        with connect(self.socket, self.port) as conn:
            apply_login(conn, login.username, login.password)

    def connect(self, dbname: str = "postgres") -> Any:
        return connect(self.socket, self.port, dbname)

    def status_details(self) -> dict[str, Any]:
        return {"stanza": STANZA, "data_dir": str(self.data_dir), "socket": str(self.socket)}
