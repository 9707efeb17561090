"""The database's backup agent (the `db` component's second process), what a backup
sidecar or operator does in a cluster:

- **scheduled base backups**: a full one when the repository has none, then a
  differential one every interval;
- **replication lag**: a heartbeat object written to region A's store every second and
  read back from region B's; the lag is the newest heartbeat written minus the newest
  one B holds (a stalled replication grows it one second per second);
- **credential rotations**: it follows the Secrets ESO writes (database/
  backup-credentials, database/postgres-credentials); when one changes it rewrites both
  stores' S3 identities (and SIGHUPs them), pgbackrest.conf, and the role's password —
  as a database operator follows its Secret;
- **metrics** on 127.0.0.1 for Prometheus, named as pgbackrest_exporter and
  postgres_exporter name them where they exist.

Run as `python -m harness.daemons.db_agent --config <state>/db/agent.json`. The config
holds paths and ports only; secrets come from the Kubernetes Secrets, never argv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Agent:
    def __init__(self, conf: dict[str, Any]) -> None:
        from harness.db.config import RepoConfig
        from harness.db.tools import PgBackRest

        self.conf = conf
        self.repo = RepoConfig.from_json(conf["repo"])
        self.tool = PgBackRest(conf["pgbackrest"], Path(conf["pgbackrest_config"]))
        self.interval = float(conf["interval"])
        self.stop = threading.Event()
        self.started = time.time()
        self.last_backup_stop: float | None = None
        self.last_written = 0.0
        self.seen: dict[str, str] = {}
        reg = self.registry = CollectorRegistry()
        stanza = {"stanza": self.tool.stanza}
        self.m_since = Gauge("pgbackrest_backup_since_last_completion_seconds",
                             "Seconds since the last completed base backup (or since the "
                             "agent started, when the repository holds none)",
                             ["stanza"], registry=reg).labels(**stanza)
        # The same labels as the age it is compared with: the rule's vectors must match.
        Gauge("heracles_db_backup_interval_seconds", "The base backup schedule's interval",
              ["stanza"], registry=reg).labels(**stanza).set(self.interval)
        self.m_backups = Counter("heracles_db_base_backups", "Base backups the agent ran",
                                 ["kind", "result"], registry=reg)
        self.m_duration = Gauge("heracles_db_last_base_backup_duration_seconds",
                                "Duration of the last successful base backup", registry=reg)
        self.m_size = Gauge("heracles_db_last_base_backup_bytes",
                            "Database size in the last successful base backup", registry=reg)
        self.m_up = Gauge("pg_up", "Whether the database answers", registry=reg)
        self.m_archived = Gauge("pg_stat_archiver_archived_count",
                                "WAL files archived (pg_stat_archiver)", registry=reg)
        self.m_failed = Gauge("pg_stat_archiver_failed_count",
                              "Failed WAL archive attempts (pg_stat_archiver)", registry=reg)
        self.m_age = Gauge("pg_stat_archiver_last_archive_age",
                           "Seconds since the last WAL file was archived", registry=reg)
        self.m_last_archived = Gauge("pg_stat_archiver_last_archived_time_seconds",
                                     "When the last WAL file was archived (unix time)",
                                     registry=reg)
        self.m_last_failed = Gauge("pg_stat_archiver_last_failed_time_seconds",
                                   "When the last archive attempt failed (unix time; 0: "
                                   "never)", registry=reg)
        labels = {"source": "region-a", "target": "region-b"}
        self.m_lag = Gauge("heracles_s3_replication_lag_seconds",
                           "Newest heartbeat written to the source store minus the newest "
                           "the target holds", ["source", "target"],
                           registry=reg).labels(**labels)
        Gauge("heracles_s3_replication_lag_objective_seconds",
              "The replication lag objective", ["source", "target"],
              registry=reg).labels(**labels).set(float(conf["lag_objective"]))
        self.m_rotations = Counter("heracles_db_credential_rotations",
                                   "Credential changes applied", ["secret"], registry=reg)

    # ---- base backups ----------------------------------------------------------------
    def refresh_backups(self) -> None:
        try:
            found = self.tool.backups()
        except Exception:  # noqa: BLE001 - the repository unreachable: keep what we had
            return
        self.last_backup_stop = found[-1].stopped if found else None

    def backup_once(self) -> None:
        kind = "diff" if self.last_backup_stop is not None else "full"
        t0 = time.monotonic()
        try:
            made = self.tool.backup(kind)
        except Exception as exc:  # noqa: BLE001 - counted and logged, retried next time
            self.m_backups.labels(kind=kind, result="failed").inc()
            print(f"base backup ({kind}) failed: {exc}", flush=True)
            return
        self.m_backups.labels(kind=kind, result="ok").inc()
        self.m_duration.set(time.monotonic() - t0)
        self.m_size.set(made.size)
        self.last_backup_stop = made.stopped
        print(f"base backup {made.label} ({kind}, {made.size} bytes) in "
              f"{time.monotonic() - t0:.1f}s", flush=True)

    def backup_loop(self) -> None:
        self.refresh_backups()
        while not self.stop.is_set():
            due = self.interval if self.last_backup_stop is None else \
                self.last_backup_stop + self.interval - time.time()
            if self.last_backup_stop is None or due <= 0:
                self.backup_once()
                if self.last_backup_stop is None:  # failed: retry sooner than a full interval
                    self.stop.wait(min(self.interval, 10.0))
                continue
            self.stop.wait(min(due, 30.0))
            self.refresh_backups()

    # ---- the database ------------------------------------------------------------------
    def archiver(self) -> None:
        from harness.db.postgres import connect

        try:
            with connect(self.repo.pg_socket, self.repo.pg_port) as conn:
                row = conn.execute(
                    "SELECT archived_count, failed_count, "
                    "extract(epoch FROM now() - last_archived_time), "
                    "coalesce(extract(epoch FROM last_archived_time), 0), "
                    "coalesce(extract(epoch FROM last_failed_time), 0) "
                    "FROM pg_stat_archiver").fetchone()
        except Exception:  # noqa: BLE001 - down or restarting
            self.m_up.set(0)
            return
        self.m_up.set(1)
        archived, failed, age, last_archived, last_failed = row
        self.m_archived.set(archived)
        self.m_failed.set(failed)
        self.m_last_archived.set(float(last_archived))
        self.m_last_failed.set(float(last_failed))
        if age is not None:
            self.m_age.set(float(age))

    def since_last(self) -> None:
        last = self.last_backup_stop or self.started
        self.m_since.set(max(0.0, time.time() - last))

    # ---- replication lag ---------------------------------------------------------------
    def heartbeat(self) -> None:
        path = f"/buckets/{self.conf['bucket']}/heracles/heartbeat"
        now = f"{time.time():.3f}".encode()
        try:
            req = urllib.request.Request(self.conf["filer_a"] + path, data=now, method="PUT")
            urllib.request.urlopen(req, timeout=2).read()
            self.last_written = float(now)
        except (OSError, urllib.error.URLError):
            pass  # region A unreachable: nothing new to replicate
        try:
            with urllib.request.urlopen(self.conf["filer_b"] + path, timeout=2) as resp:
                seen = float(resp.read().decode() or 0)
        except (OSError, urllib.error.URLError, ValueError):
            seen = 0.0
        if self.last_written:
            self.m_lag.set(max(0.0, self.last_written - seen) if seen else
                           self.last_written - self.started)

    # ---- credential rotations ----------------------------------------------------------
    def follow_credentials(self, core: Any) -> None:
        from harness.db import credentials

        for name in (credentials.BACKUP_SECRET, credentials.DB_SECRET):
            try:
                data = credentials.read_secret(core, name)
            except Exception:  # noqa: BLE001 - the apiserver restarting
                continue
            if not data:
                continue
            digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
            before = self.seen.get(name)
            self.seen[name] = digest
            if before is None or before == digest:
                continue
            try:
                if name == credentials.BACKUP_SECRET:
                    self.apply_backup_keys(credentials.BackupKeys(data["access_key"],
                                                                  data["secret_key"]))
                else:
                    self.apply_login(credentials.DbLogin(data["username"], data["password"]))
            except Exception as exc:  # noqa: BLE001 - retried on the next change check
                self.seen[name] = before
                print(f"applying the new {name} failed: {type(exc).__name__}", flush=True)
                continue
            self.m_rotations.labels(secret=name).inc()
            print(f"{name} changed: applied", flush=True)

    def apply_backup_keys(self, keys: Any) -> None:
        from harness.db.config import write_identities

        for region, ident in self.conf["identities"].items():
            write_identities(Path(ident), keys)
            self.signal_process(self.conf["store_processes"][region], signal.SIGHUP)
        self.repo.write(Path(self.conf["pgbackrest_config"]), keys)

    def apply_login(self, login: Any) -> None:
        from harness.db.postgres import apply_login, connect

        with connect(self.repo.pg_socket, self.repo.pg_port) as conn:
            apply_login(conn, login.username, login.password)

    def signal_process(self, name: str, sig: int) -> None:
        """Signal a sibling process of the environment, found by its pid record."""
        import os

        import psutil

        from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV, pid_record_dir

        record = pid_record_dir(os.environ[REGISTRY_ENV], os.environ[RUN_ID_ENV]) / \
            f"{name}.json"
        rec = json.loads(record.read_text())
        proc = psutil.Process(rec["pid"])
        if abs(proc.create_time() - rec["create_time"]) > 0.5:
            raise RuntimeError(f"{name}: its pid was reused")
        proc.send_signal(sig)

    # ---- main loop ---------------------------------------------------------------------
    def run(self) -> None:
        from kubernetes import client, config

        core = client.CoreV1Api(config.new_client_from_config(self.conf["kubeconfig"]))
        start_http_server(int(self.conf["metrics_port"]), addr="127.0.0.1",
                          registry=self.registry)
        threading.Thread(target=self.backup_loop, name="backups", daemon=True).start()
        tick = 0
        while not self.stop.is_set():
            self.heartbeat()
            self.since_last()
            if tick % 2 == 0:
                self.archiver()
                self.follow_credentials(core)
            tick += 1
            self.stop.wait(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    agent = Agent(json.loads(args.config.read_text()))
    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    agent.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
