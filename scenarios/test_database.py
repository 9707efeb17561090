"""The database's disaster recovery on the prod profile (issue 19): PostgreSQL archiving
to region A's S3 store, replicated to region B, credentials from Vault through ESO —
rotations, the three drills from the command line with their reports, and the backup
alerts fired by real faults."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import eventually
from harness.backends.local.components.database import Database
from harness.backends.local.components.objectstore import ObjectStore
from harness.clients.eso import ExternalSecretsClient
from harness.db import credentials
from harness.db.postgres import connect_tcp
from harness.errors import HarnessError
from harness.testing import EnvironmentFactory, LocalEnvironment

pytestmark = pytest.mark.slow

BACKUP_INTERVAL = 15.0  # seconds between scheduled base backups in this module
LAG_OBJECTIVE = 5.0


@pytest.fixture(scope="module")
def prod(environment_factory: EnvironmentFactory) -> Iterator[LocalEnvironment]:
    """The prod profile's Vault (3-node raft, TLS), ESO (two replicas), Prometheus,
    Alertmanager, snapshots, and the database with its two stores (Argo CD and Git are
    left out: nothing here deploys)."""
    glog_files = set(Path("/tmp").glob("weed.*"))
    with environment_factory.environment(
            "db-prod", profile="prod",
            components=("db", "prometheus", "alertmanager", "backup"),
            db_backup_interval=BACKUP_INTERVAL, db_lag_objective=LAG_OBJECTIVE) as env:
        yield env
    # Stopped, it leaves nothing in the temp dir: PostgreSQL's socket directory (this
    # state dir is too long for a socket address), SeaweedFS's gRPC sockets, and no
    # weed.* log files (its logs go to the process logs, which are redacted).
    left = [path for path in (env.database.socket, *env.object_store.temp_paths())
            if path.exists() and env.settings.state_dir not in path.parents]
    left += sorted(set(Path("/tmp").glob("weed.*")) - glog_files)
    assert left == [], f"left in the temp dir after down: {left}"


def _db(env: LocalEnvironment) -> Database:
    return env.database


def _store(env: LocalEnvironment) -> ObjectStore:
    return env.object_store


def _connections(proc: psutil.Process) -> list[Any]:
    """Its sockets; none when it exited since it was listed (PostgreSQL's backends and
    archive-push children come and go)."""
    try:
        return proc.net_connections("inet")
    except psutil.NoSuchProcess:
        return []


def test_it_listens_on_loopback_only_and_takes_its_credentials_from_eso(prod):
    db, store = _db(prod), _store(prod)
    for comp in (db, store):
        for proc in comp.processes():
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
            listening = {c.laddr.ip for p in tree for c in _connections(p)
                         if c.status == psutil.CONN_LISTEN}
            assert listening <= {"127.0.0.1"}, (proc.name, listening)
    core = prod.kube_client().core
    keys, login = credentials.backup_keys(core), credentials.db_login(core)
    vault = prod.vault
    assert vault.kv_get("backup/s3") == {"access_key": keys.access_key,
                                         "secret_key": keys.secret_key}
    assert vault.kv_get("postgres/main") == {"username": login.username,
                                             "password": login.password}
    conf = db.pgbackrest_config.read_text()
    assert f"repo1-s3-key={keys.access_key}\n" in conf
    assert oct(db.pgbackrest_config.stat().st_mode & 0o777) == "0o600"
    with connect_tcp(db.port, login.username, login.password) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == login.username
    with pytest.raises(Exception, match="password authentication failed"):
        connect_tcp(db.port, login.username, login.password + "-wrong")
    tool = db.tool()
    backups = eventually(lambda: tool.backups() or None, timeout=120, interval=1,
                         description="the agent's first base backup")
    assert backups[0].kind == "full"
    in_b = eventually(lambda: tool.backups(store.s3_port("region-b")) or None, timeout=60,
                      interval=1, description="the base backup replicated to region B")
    assert in_b[0].label == backups[0].label


def test_rotating_both_credentials_in_vault_keeps_backups_and_archiving_working(prod):
    db, vault, kube = _db(prod), prod.vault, prod.kube_client()
    tool = db.tool()
    # A differential backup needs the agent's first full one, taken as the database
    # starts; rotated keys under it would fail it (a loaded machine once got that far).
    eventually(lambda: tool.backups() or None, timeout=120, retry_on=(HarnessError,),
               description="the backup agent's first full backup")
    old_keys = credentials.backup_keys(kube.core)
    old_login = credentials.db_login(kube.core)
    new_keys = credentials.new_backup_keys()
    new_password = credentials.new_backup_keys().secret_key
    vault.kv_put("backup/s3", access_key=new_keys.access_key, secret_key=new_keys.secret_key)
    vault.kv_put("postgres/main", username=old_login.username, password=new_password)
    eso = ExternalSecretsClient(prod, kube)
    for name in (credentials.BACKUP_SECRET, credentials.DB_SECRET):
        eso.force_sync(credentials.NAMESPACE, name)
    eventually(lambda: credentials.backup_keys(kube.core) == new_keys or None, timeout=60,
               description="ESO delivers the rotated backup keys")
    eventually(lambda: f"repo1-s3-key={new_keys.access_key}\n"
               in db.pgbackrest_config.read_text() or None, timeout=30,
               description="the backup agent rewrites pgbackrest.conf")

    def new_login_works() -> bool:
        with connect_tcp(db.port, old_login.username, new_password):
            return True

    eventually(new_login_works, timeout=30, retry_on=(Exception,),
               description="the role takes the rotated password")
    with pytest.raises(Exception, match="password authentication failed"):
        connect_tcp(db.port, old_login.username, old_login.password)
    made = eventually(lambda: tool.backup("diff"), timeout=60, retry_on=(HarnessError,),
                      description="a base backup with the rotated keys")
    assert made.kind == "diff"
    tool.check()  # archive-push with the new keys: a WAL switch archived
    with pytest.raises(HarnessError, match="pgbackrest info failed"):
        tool.run("info", f"--repo1-s3-key={old_keys.access_key}",
                 f"--repo1-s3-key-secret={old_keys.secret_key}")


@pytest.mark.parametrize("name", ["db-pitr", "db-region-loss", "platform-loss"])
def test_the_database_drill_passes_from_the_command_line(prod, name, tmp_path: Path):
    res = subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir",
                          str(prod.settings.state_dir), "drill", "run", name,
                          "--report", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "on the running prod environment" in res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASS", report["reasons"]
    assert report["profile"] == "prod"
    assert report["rpo"]["unit"] == "transaction(s)"
    assert report["rpo"]["unexpected_loss"] == 0
    assert report["rto_seconds"] is not None and report["rto_seconds"] > 0
    for file in ("report.md", "report.html", "timeline.png"):
        assert (tmp_path / file).stat().st_size > 0
    checks = [e for e in report["events"] if e["kind"] == "check"]
    assert checks and all(e["ok"] for e in checks), checks
    if name == "db-pitr":
        assert report["rpo"]["lost"] == 0
    if name == "db-region-loss":
        assert report["measurements"]["replication_lag_at_loss"] >= 0
    if name == "platform-loss":
        assert "eso_credentials" in report["measurements"]


def _now(env: LocalEnvironment) -> LocalEnvironment:
    """The environment as its state file says now: the drills ran in `harness drill run`
    processes, which restarted processes under new pids."""
    return LocalEnvironment(env.settings).attach()


def test_region_a_down_fires_the_archiving_and_backup_age_alerts(prod):
    prod = _now(prod)
    db, alerts = _db(prod), prod.alerts()
    store = prod.process("s3-region-a")
    store.kill()
    t0 = time.monotonic()
    try:
        with db.connect() as conn:  # WAL to archive: every attempt now fails
            conn.execute("CREATE TABLE IF NOT EXISTS alert_probe (at timestamptz)")
            conn.execute("INSERT INTO alert_probe VALUES (now())")
            conn.execute("SELECT pg_switch_wal()")
        alerts.wait_for_alert("DatabaseWalArchivingFailing", "firing", timeout=120)
        print(f"\nDatabaseWalArchivingFailing {time.monotonic() - t0:.1f}s after the store "
              "went down")
        alerts.wait_for_alert("DatabaseBaseBackupTooOld", "firing",
                              timeout=2 * BACKUP_INTERVAL + 120, stanza="main")
        print(f"DatabaseBaseBackupTooOld {time.monotonic() - t0:.1f}s after")
    finally:
        prod.start_process("s3-region-a")
    alerts.wait_for_alert("DatabaseBaseBackupTooOld", "resolved", timeout=180)
    db.tool().check()  # archiving works again


def test_a_stalled_replication_fires_the_lag_alert(prod):
    prod = _now(prod)
    alerts = prod.alerts()
    sync = prod.process("s3-replication")
    sync.pause()  # filer.sync stops: region B falls behind, a second per second
    try:
        alert = alerts.wait_for_alert("BackupReplicationLagHigh", "firing", timeout=120,
                                      target="region-b")
    finally:
        sync.resume()
    assert alert["labels"]["source"] == "region-a"
    alerts.wait_for_alert("BackupReplicationLagHigh", "resolved", timeout=120)


def test_every_backup_rule_has_a_passing_unit_test_and_live_metrics(prod):
    rules = prod.settings.fixtures_dir / "database" / "database.rules.yaml"
    res = subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir",
                          str(prod.settings.state_dir), "rules", "test", "--live", "--json",
                          str(rules)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(res.stdout)
    assert {r["rule"]: r["status"] for r in rows} == {
        "DatabaseBaseBackupTooOld": "passed", "DatabaseWalArchivingFailing": "passed",
        "BackupReplicationLagHigh": "passed"}
