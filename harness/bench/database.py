"""`harness bench --only db`: the database's backup figures on a prod stack — a database
of a stated size generated with pgbench, its full base backup and its restore (pgBackRest
to and from region A's store), the db-pitr drill's RTO, and the replication lag to region
B while pgbench writes."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.bench.figures import Figure
from harness.bench.runners import Log, temporary_environment
from harness.db.tools import Target
from harness.errors import HarnessError
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment

MIB_PER_SCALE = 15.0  # pgbench: one scale unit is about 15 MiB of tables and indexes


def _pgbench(env: LocalEnvironment, *args: str, timeout: float = 3600) -> None:
    db = env.database
    argv = [db.bin("postgresql", "pgbench"), "-h", str(db.socket), "-p", str(db.port),
            "-U", "postgres", *args, "postgres"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise HarnessError(f"pgbench {' '.join(args)} failed: {out.stderr.strip()[-400:]}")


def db_figures(settings: Settings, toolchain: Toolchain, repeat: int, log: Log,
               size_mib: int = 1024) -> tuple[Figure, ...]:
    from harness.drills import run_drill
    from harness.drills.database import replication_lag, start_and_promote

    scale = max(1, round(size_mib / MIB_PER_SCALE))
    log("prod stack with the database (Vault HA, ESO, two S3 stores, PostgreSQL)")
    with temporary_environment(settings, profile="prod", components=["db"],
                               toolchain=toolchain) as env:
        db = env.database
        tool = db.tool()
        eventually(lambda: tool.backups() or None, timeout=300, interval=1,
                   error=HarnessError, description="the agent's first base backup")
        log(f"generating {size_mib} MiB of rows (pgbench -i -s {scale})")
        t0 = time.monotonic()
        _pgbench(env, "-i", "-q", "-s", str(scale))
        generate = time.monotonic() - t0
        with db.connect() as conn:
            size = int(conn.execute("SELECT pg_database_size('postgres')").fetchone()[0])
        size_note = f"{size / 2**20:.0f} MiB database"
        backups, restores, sizes = [], [], []
        for i in range(repeat):
            log(f"run {i + 1}/{repeat}: full base backup of the {size_note}")
            t0 = time.monotonic()
            made = tool.backup("full")
            backups.append(time.monotonic() - t0)
            sizes.append(made.repo_size / 2**20)
            log(f"run {i + 1}/{repeat}: restore into a wiped server, to promotion")
            for name in ("db-agent", "postgres"):
                env.process(name).stop()
            env.process("postgres").wipe_data()
            t0 = time.monotonic()
            tool.restore(Target("default"))
            start_and_promote(env, db, timeout=600)
            restores.append(time.monotonic() - t0)
            env.start_process("db-agent")
        pitr = []
        for i in range(repeat):
            log(f"run {i + 1}/{repeat}: db-pitr drill")
            with tempfile.TemporaryDirectory(prefix="heracles-bench-drill-") as tmp:
                result = run_drill("db-pitr", env, Path(tmp))
            if result.rto_seconds is not None:
                pitr.append(result.rto_seconds)
        log("replication lag to region B while pgbench writes for 30 s (2 clients)")
        lags: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                lag = replication_lag(db)
                if lag is not None:
                    lags.append(lag)
                done.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _pgbench(env, "-c", "2", "-j", "2", "-T", "30", "-n")
        finally:
            done.set()
            sampler.join()
    mib_s = [size / 2**20 / s for s in backups]
    return (
        Figure("db_generate", "s", [generate], note=f"generate {size_note} (pgbench -i)"),
        Figure("db_full_base_backup", "s", backups,
               note=f"full base backup, {size_note} "
                    f"({statistics.median(mib_s):.0f} MiB/s, "
                    f"{statistics.median(sizes):.0f} MiB in the repository, lz4)"),
        Figure("db_restore_to_promotion", "s", restores,
               note=f"restore {size_note} into a wiped server, to promotion"),
        Figure("db_pitr_rto", "s", pitr, note="db-pitr drill RTO (drop -> table back)"),
        Figure("db_replication_lag_under_load", "s", lags,
               note="replication lag A -> B under pgbench writes (1 s samples)"),
    )
