"""Supervised processes: started by mirakuru against a readiness probe and a deadline,
controlled afterwards by pid (psutil), so a later `harness` invocation that only attached
can stop, kill, pause or restart what an earlier one started.

Every process runs in its own session (mirakuru's setsid) with HERACLES_RUN_ID in its
environment; that marker is how the reaper finds the leftovers of a run that died before
it could record them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mirakuru
import mirakuru.base
import psutil

from harness.errors import ComponentStartError, HarnessError
from harness.runtime.ports import bind_conflicts
from harness.runtime.redact import redact
from harness.wait import WaitTimeout, eventually

RUN_ID_ENV = "HERACLES_RUN_ID"
REGISTRY_ENV = "HERACLES_REGISTRY"
PIDS_DIR = "pids"


def pid_record_dir(registry: str | Path, run_id: str) -> Path:
    """`<registry>/pids/<run id>/`: one file per process the run started (pid + start
    time). The environment marker alone is not enough: a process that rewrites its
    title (redis-server does) wipes /proc/<pid>/environ with it."""
    return Path(registry) / PIDS_DIR / run_id


def _write_pid_record(registry: str, run_id: str, name: str, pid: int,
                      create_time: float) -> None:
    if not registry:
        return
    folder = pid_record_dir(registry, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"name": name, "pid": pid, "create_time": create_time}))
    os.replace(tmp, folder / f"{name}.json")

# mirakuru's atexit hook SIGKILLs every process this interpreter started. A detached
# `harness up` must leave its processes running; teardown is ours (stop/reaper).
atexit.unregister(mirakuru.base.cleanup_subprocesses)

Probe = Callable[[], bool]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return redact("\n".join(data.splitlines()[-lines:]))


class _ProbedExecutor(mirakuru.Executor):
    """mirakuru executor whose readiness is an arbitrary probe (TLS /readyz, etc.)."""

    def __init__(self, probe: Probe, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._probe = probe

    def pre_start_check(self) -> bool:
        return False

    def after_start_check(self) -> bool:
        try:
            return bool(self._probe())
        except Exception:  # noqa: BLE001 - a probe that raises is simply "not ready yet"
            return False


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    log_path: Path
    probe: Probe
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a token
    cwd: Path | None = None
    data_dir: Path | None = None
    start_timeout: float = 60.0
    stop_grace: float = 10.0
    discard_stdout: bool = False  # a banner with secrets (bao -dev) must not reach the log
    # Processes of the same component that must be ready before this one starts; None
    # means the one listed before it (the safe default: one after another).
    after: tuple[str, ...] | None = None
    # What `stop` sends first: PostgreSQL's fast shutdown is SIGINT (its SIGTERM waits
    # for every client to leave).
    stop_signal: int = signal.SIGTERM


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, run_id: str, registry: str = "",
                 pid: int | None = None, create_time: float | None = None) -> None:
        self.spec = spec
        self.run_id = run_id
        self.registry = registry
        self.pid = pid
        self.create_time = create_time
        self._popen: subprocess.Popen | None = None
        self.paused = False

    @property
    def name(self) -> str:
        return self.spec.name

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start and wait for readiness; on failure kill it and raise with its log tail."""
        if self.running():
            return
        spec = self.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.data_dir:
            spec.data_dir.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {spec.name}\n".encode())
            log.flush()
            executor = _ProbedExecutor(
                spec.probe, command=spec.argv, cwd=str(spec.cwd) if spec.cwd else None,
                timeout=spec.start_timeout, sleep=0.1,
                envvars={**spec.env, RUN_ID_ENV: self.run_id, REGISTRY_ENV: self.registry},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if spec.discard_stdout else log,
                stderr=log if spec.discard_stdout else subprocess.STDOUT,
            )
            started = time.monotonic()
            try:
                executor.start()
            except mirakuru.exceptions.ProcessExitedWithError as exc:
                tail = log_tail(spec.log_path)
                raise ComponentStartError(
                    f"{spec.name} exited with code {exc.exit_code} before it was ready "
                    f"(log {spec.log_path}):\n{tail}{bind_conflicts(tail)}") from None
            except mirakuru.exceptions.TimeoutExpired:
                raise ComponentStartError(
                    f"{spec.name} was not ready within its {spec.start_timeout:.0f}s deadline "
                    f"(log {spec.log_path}):\n{log_tail(spec.log_path)}") from None
        assert executor.process is not None
        self._popen = executor.process
        # Control passes to pid-based handling; keep mirakuru's __del__ from killing it.
        executor.process = None
        self.pid = self._popen.pid
        self.create_time = psutil.Process(self.pid).create_time()
        _write_pid_record(self.registry, self.run_id, spec.name, self.pid, self.create_time)
        self.ready_seconds = time.monotonic() - started
        self.paused = False

    def _proc(self) -> psutil.Process | None:
        if self.pid is None:
            return None
        try:
            proc = psutil.Process(self.pid)
            if self.create_time is not None and abs(proc.create_time() - self.create_time) > 0.5:
                return None  # pid reused by something else
            if proc.status() == psutil.STATUS_ZOMBIE:
                self._reap_zombie()
                return None
            return proc
        except psutil.NoSuchProcess:
            return None

    def _reap_zombie(self) -> None:
        if self._popen is not None:
            self._popen.poll()

    def running(self) -> bool:
        return self._proc() is not None

    def ready(self) -> bool:
        if not self.running() or self.paused:
            return False
        try:
            return bool(self.spec.probe())
        except Exception:  # noqa: BLE001
            return False

    def _signal_group(self, sig: int) -> None:
        proc = self._proc()
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)  # own session: pgid == pid
        except ProcessLookupError:
            pass
        except PermissionError:
            proc.send_signal(sig)

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM (or the spec's stop signal), then SIGKILL after the grace period."""
        proc = self._proc()
        if proc is None:
            self.pid = None
            return
        grace = self.spec.stop_grace if grace is None else grace
        # Always: a process paused by another invocation cannot act on SIGTERM.
        self._signal_group(signal.SIGCONT)
        self._signal_group(self.spec.stop_signal)
        if not self._wait_gone(proc, grace):
            self._signal_group(signal.SIGKILL)
            self._wait_gone(proc, 10)
        self.pid = None
        self.paused = False

    def kill(self) -> None:
        """kill -9, as a crash would: no chance to clean up."""
        proc = self._proc()
        if proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self._wait_gone(proc, 10)
        self.pid = None
        self.paused = False

    def _wait_gone(self, proc: psutil.Process, timeout: float) -> bool:
        if self._popen is not None and self._popen.pid == proc.pid:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        # Not our child (we attached): it is reparented, and its zombie may linger until
        # init reaps it, so "gone" means not running, not "waited for".
        def gone() -> bool:
            try:
                return proc.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        try:
            eventually(gone, timeout=timeout, interval=0.05, retry_on=(AssertionError,),
                       description=f"{self.spec.name} (pid {proc.pid}) gone")
        except WaitTimeout:
            return False
        return True

    def pause(self) -> None:
        """SIGSTOP: the process still holds its ports but answers nothing."""
        self._signal_group(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)
        self.paused = False

    def wipe_data(self) -> None:
        """Delete this (stopped) process's data directory and leave it empty: disk loss."""
        if self.running():
            raise HarnessError(f"stop {self.name} before wiping its data directory")
        if self.spec.data_dir is None:
            raise HarnessError(f"{self.name} has no data directory")
        shutil.rmtree(self.spec.data_dir, ignore_errors=True)
        self.spec.data_dir.mkdir(parents=True)

    def restart(self) -> None:
        """Graceful stop and start again on the same data directory and ports."""
        self.stop()
        self.start()

    def rss_bytes(self) -> int:
        proc = self._proc()
        if proc is None:
            return 0
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def record(self) -> dict:
        return {"pid": self.pid, "create_time": self.create_time, "argv": self.spec.argv,
                "log": str(self.spec.log_path)}
