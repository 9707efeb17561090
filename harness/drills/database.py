"""The database drills (prod; staging when it runs the `db` component): point-in-time
recovery after a dropped table, the loss of region A (store and server), and the loss of
the platform itself — Vault and the database together, restored in the order a real
outage forces: Vault from its raft snapshot, the credentials back through ESO, the
database with the backup keys those yield.

Each writes a steady stream of rows and keeps what every commit returned (id, xid, time,
WAL position after it), so the data lost is counted, not guessed: in transactions and in
seconds, and against what the backup could hold at the moment of the fault.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.clients.eso import ExternalSecretsClient
from harness.db import credentials
from harness.db.tools import PgBackRest, Target
from harness.drills.model import DrillRun, backup_dir
from harness.errors import HarnessError
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.components.database import Database
    from harness.backends.local.components.objectstore import ObjectStore
    from harness.backends.local.environment import LocalEnvironment

SCHEMA = "heracles_drill"
TABLE = f"{SCHEMA}.orders"
SEGMENT = 16 * 1024 * 1024  # bytes of a WAL segment (initdb's default)


def lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def segment_end(name: str) -> int:
    """The WAL position where segment `name` (TTTTTTTTXXXXXXXXYYYYYYYY) ends."""
    log, seg = int(name[8:16], 16), int(name[16:24], 16)
    return (log << 32) + (seg + 1) * SEGMENT


@dataclass
class Commit:
    id: int
    xid: int
    at: float  # unix time of the commit as the server stamped the row
    lsn: int  # WAL insert position after the commit


@dataclass
class Writer:
    """Inserts one row per transaction until stopped or the table is gone; keeps every
    commit the server acknowledged."""

    db: Database
    interval: float = 0.02
    commits: list[Commit] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with self.db.connect() as conn:
                while not self._stop.is_set():
                    row = conn.execute(
                        f"INSERT INTO {TABLE} (payload) VALUES (md5(random()::text)) "
                        "RETURNING id, txid_current(), extract(epoch FROM written_at)"
                    ).fetchone()
                    lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                    self.commits.append(Commit(int(row[0]), int(row[1]), float(row[2]),
                                               lsn_int(lsn[0])))
                    self._stop.wait(self.interval)
        except Exception as exc:  # noqa: BLE001 - the accident or the loss ends the stream
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_ended(self, timeout: float = 30) -> None:
        self._thread.join(timeout=timeout)


def _database(platform: LocalEnvironment) -> Database:
    if "db" not in platform.components:
        raise HarnessError("this drill needs the database (the `db` component): run the "
                           "prod profile, or staging with --components including db")
    return platform.database


def _store(platform: LocalEnvironment) -> ObjectStore:
    return platform.object_store


def _prepare(db: Database, run: DrillRun) -> PgBackRest:
    """A fresh drill table, and a base backup in the repository (the agent's first one,
    or one taken now)."""
    with db.connect() as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, payload text, "
                     "written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
    tool = db.tool()
    backups = eventually(lambda: tool.backups() or None, timeout=120, interval=1,
                         error=HarnessError, description="a base backup in the repository")
    run.setup(f"table {TABLE} created; newest base backup {backups[-1].label} "
              f"({backups[-1].kind}, {backups[-1].size} bytes)")
    return tool


def _switch_and_archive(db: Database, timeout: float = 60) -> str:
    """`SELECT pg_switch_wal()` and wait until that segment is archived: the runbook's
    step before a restore that must reach the last transaction."""
    with db.connect() as conn:
        lsn = conn.execute("SELECT pg_switch_wal()::text").fetchone()[0]
        wal = conn.execute("SELECT pg_walfile_name(%s::pg_lsn)", (lsn,)).fetchone()[0]

        def archived() -> str | None:
            last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            return last if last and last[8:] >= wal[8:] else None

        eventually(archived, timeout=timeout, interval=0.2, error=HarnessError,
                   description=f"WAL segment {wal} archived")
    return str(wal)


def start_and_promote(platform: LocalEnvironment, db: Database, timeout: float = 120) -> None:
    platform.start_process("postgres")

    def promoted() -> bool:
        with db.connect() as conn:
            return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]

    eventually(lambda: promoted() or None, timeout=timeout, interval=0.2,
               error=HarnessError, description="the restored server ends recovery")


def _rows(db: Database) -> dict[int, float]:
    """id -> commit time of every row in the drill table ({} when the table itself was
    not in what was restored)."""
    with db.connect() as conn:
        if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
            return {}
        return {int(i): float(t) for i, t in conn.execute(
            f"SELECT id, extract(epoch FROM written_at) FROM {TABLE}").fetchall()}


def replication_lag(db: Database) -> float | None:
    """The agent's replication lag gauge, as Prometheus would scrape it."""
    try:
        with urllib.request.urlopen(db.metrics_address, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("heracles_s3_replication_lag_seconds{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _record_loss(run: DrillRun, restored: dict[int, float], lost: int, unexpected: int,
                 fault_at: float, fault: str, restore_seconds: float) -> None:
    """RPO in transactions and in seconds (the fault's time minus the newest commit
    recovered), and the restore's duration."""
    last = max(restored.values()) if restored else 0.0
    run.result.rpo = {"lost": lost, "unit": "transaction(s)",
                      "window_seconds": round(max(0.0, fault_at - last), 3),
                      "window": f"last recovered commit → {fault}",
                      "unexpected_loss": unexpected}
    run.measure("restore", restore_seconds)


def db_pitr(platform: LocalEnvironment, run: DrillRun, stream: float = 3.0) -> None:
    db = _database(platform)
    tool = _prepare(db, run)
    writer = Writer(db).start()
    eventually(lambda: len(writer.commits) >= 20 or None, timeout=30, error=HarnessError,
               description="the writer commits")
    time.sleep(stream)  # the stream runs on: the accident hits a busy table
    with db.connect() as conn:
        with conn.transaction():
            drop_xid = int(conn.execute("SELECT txid_current()").fetchone()[0])
            conn.execute(f"DROP TABLE {TABLE}")
        dropped_at = time.time()
    run.fault(f"DROP TABLE {TABLE} by accident (xid {drop_xid}) while rows stream in")
    writer.wait_ended()
    committed = {c.id: c for c in writer.commits}
    run.info(f"{len(committed)} transactions committed before the drop; the writer "
             f"stopped: {writer.error or 'no error'}")
    wal = _switch_and_archive(db)
    run.recovery(f"pg_switch_wal(): segment {wal} with the drop archived")
    for name in ("db-agent", "postgres"):
        platform.process(name).stop()
    run.recovery("database and backup agent stopped")
    took = tool.restore(Target("xid", str(drop_xid), exclusive=True))
    run.recovery(f"pgbackrest restore --type=xid --target={drop_xid} --target-exclusive "
                 f"({took:.1f}s)")
    start_and_promote(platform, db)
    restored = _rows(db)
    run.restored(f"the table is back: {len(restored)} rows, the server promoted")
    lost = sorted(set(committed) - set(restored))
    extra = sorted(set(restored) - set(committed))
    run.check(f"every one of the {len(committed)} committed transactions is back "
              f"({len(lost)} missing)", not lost)
    run.check(f"nothing beyond them ({len(extra)} row(s) whose commit the writer never "
              "saw acknowledged)", len(extra) <= 1)
    _record_loss(run, restored, len(lost), len(lost), dropped_at, "drop", took)
    platform.start_process("db-agent")
    tool.check()
    run.check("WAL archiving works on the new timeline (pgbackrest check)", True)


def db_region_loss(platform: LocalEnvironment, run: DrillRun, stream: float = 12.0) -> None:
    """`stream` outlasts archive_timeout, so segments holding rows reach region B."""
    db, store = _database(platform), _store(platform)
    tool = _prepare(db, run)
    b_port = store.s3_port("region-b")
    wal = _switch_and_archive(db)
    eventually(lambda: (tool.archived_wal(b_port) or "")[8:] >= wal[8:] or None,
               timeout=60, interval=0.5, error=HarnessError,
               description=f"the base backup and WAL up to {wal} replicated to region B")
    run.setup(f"the table's creation archived ({wal}) and replicated to region B")
    writer = Writer(db).start()
    eventually(lambda: len(writer.commits) >= 20 or None, timeout=30, error=HarnessError,
               description="the writer commits")
    time.sleep(stream)
    lag = replication_lag(db)
    in_b = tool.archived_wal(b_port)
    if lag is not None:
        lag = round(lag, 3)
        run.measure("replication_lag_at_loss", lag)
    lost_at = time.time()
    platform.process("db-agent").kill()
    platform.process("postgres").kill()
    platform.process("postgres").wipe_data()
    platform.process("s3-replication").kill()
    store.wipe_region("region-a")
    run.fault(f"region A lost: its S3 store and the database server, killed and wiped "
              f"(replication lag {lag if lag is not None else '?'}s; newest WAL in B "
              f"{in_b})")
    writer.wait_ended()
    committed = {c.id: c for c in writer.commits}
    held = segment_end(in_b) if in_b else 0
    expected = {i for i, c in committed.items() if c.lsn <= held}
    took = tool.restore(Target("default"), s3_port=b_port)
    run.recovery(f"a fresh server restored from region B's copy ({took:.1f}s)")
    start_and_promote(platform, db)
    restored = _rows(db)
    run.restored(f"the database serves again from region B's copy: {len(restored)} rows")
    lost = sorted(set(committed) - set(restored))
    unexpected = sorted(expected - set(restored))
    run.check(f"every transaction held by region B at the loss is back "
              f"({len(expected)} of {len(committed)} committed)", not unexpected)
    _record_loss(run, restored, len(lost), len(unexpected), lost_at, "loss", took)
    _rebuild_region_a(platform, db, store, run)


def _rebuild_region_a(platform: LocalEnvironment, db: Database, store: ObjectStore,
                      run: DrillRun) -> None:
    """Region A comes back empty: the store, the replication, a new stanza and a full
    base backup — the database is protected again."""
    platform.start_process("s3-region-a")
    store.ensure_bucket("region-a")
    platform.start_process("s3-replication")
    tool = db.tool()
    tool.stanza_create()
    tool.check()
    full = tool.backup("full")
    platform.start_process("db-agent")
    run.recovery(f"region A rebuilt: empty store, stanza, full backup {full.label}")
    run.check("region A holds a new full base backup", bool(tool.backups()))


def platform_loss(platform: LocalEnvironment, run: DrillRun) -> None:

    db, vault = _database(platform), platform.vault
    tool = _prepare(db, run)
    writer = Writer(db).start()
    eventually(lambda: len(writer.commits) >= 50 or None, timeout=30, error=HarnessError,
               description="the writer commits")
    writer.stop()
    committed = {c.id for c in writer.commits}
    wal = _switch_and_archive(db)
    snap = vault.snapshot_save(backup_dir(platform) / f"vault-{int(time.time())}.snap")
    run.setup(f"{len(committed)} rows committed and archived (segment {wal}); Vault raft "
              f"snapshot saved ({snap.stat().st_size} bytes)")
    core = platform.kube_client().core
    before = credentials.db_login(core)

    platform.process("db-agent").kill()
    platform.process("postgres").kill()
    platform.process("postgres").wipe_data()
    db.pgbackrest_config.unlink(missing_ok=True)
    vault.wipe_cluster()
    for name in (credentials.BACKUP_SECRET, credentials.DB_SECRET):
        core.delete_namespaced_secret(name, credentials.NAMESPACE)
    run.fault("platform lost: every Vault node (data and all), the database server (data "
              "and all, its pgbackrest.conf with the backup keys) and the Secrets ESO had "
              "delivered")
    run.check("no backup keys are left anywhere but in the Vault snapshot",
              credentials.read_secret(core, credentials.BACKUP_SECRET) is None
              and not db.pgbackrest_config.exists())

    vault.restore_cluster(snap, step=run.recovery)
    run.recovery("Vault restored from its raft snapshot, unsealed with the original keys")
    eso = ExternalSecretsClient(platform, platform.kube_client())
    for name in (credentials.BACKUP_SECRET, credentials.DB_SECRET):
        eso.force_sync(credentials.NAMESPACE, name)
    t0 = time.monotonic()
    keys = credentials.backup_keys(core, timeout=120)
    login = credentials.db_login(core, timeout=120)
    run.measure("eso_credentials", time.monotonic() - t0)
    run.recovery("ESO delivered postgres-credentials and backup-credentials from the "
                 "restored Vault")
    db.repo_config().write(db.pgbackrest_config, keys)
    took = tool.restore(Target("default"))
    run.recovery(f"database restored with the backup keys ESO delivered ({took:.1f}s)")
    start_and_promote(platform, db)
    db.apply_login()
    from harness.db.postgres import connect_tcp

    with connect_tcp(db.port, login.username, login.password) as conn:
        restored = {int(r[0]) for r in conn.execute(f"SELECT id FROM {TABLE}").fetchall()}
    run.restored("a client logs in over TCP with the ESO-delivered password and reads "
                 f"{len(restored)} rows")
    lost = sorted(committed - restored)
    run.check(f"all {len(committed)} archived transactions are back", not lost)
    run.check("the database password is the one before the loss", login == before)
    run.result.rpo = {"lost": len(lost), "unit": "transaction(s)", "window_seconds": 0.0,
                      "window": "every row was archived before the loss",
                      "unexpected_loss": len(lost)}
    run.measure("restore", took)
    platform.start_process("db-agent")
    tool.check()
    run.check("WAL archiving works again (pgbackrest check)", True)
