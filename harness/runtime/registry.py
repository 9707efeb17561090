"""Machine-wide record of harness runs, and the reaper for runs that died.

A run is registered before it spawns anything, with its owner (pid + start time).
`harness up` detaches its run once everything is ready (the environment is then meant to
outlive the command); a pytest session stays owned by pytest. A run that is not detached
and whose owner is gone (SIGKILLed pytest, closed terminal) is a leftover: the next run
kills every process carrying its HERACLES_RUN_ID, releases its ports and marks its state
directory down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from filelock import FileLock

from harness.runtime.node_host import release_host, sysctl_runs
from harness.runtime.ports import PortRegistry
from harness.runtime.process import PIDS_DIR, REGISTRY_ENV, RUN_ID_ENV, pid_record_dir
from harness.runtime.state import remove_temp_paths


def new_run_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)


def _owner_alive(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 0.5 and proc.status() != "zombie"
    except psutil.NoSuchProcess:
        return False


def processes_of_run(run_id: str, registry: str | Path | None = None) -> list[psutil.Process]:
    """Every live process of this run: those whose environment carries its id, and —
    with the registry — those it recorded starting (pid + start time) and the members
    of their process groups, whatever they did to their title or environment."""
    found = {p.pid: p for p in all_marked_processes(None).get(run_id, [])}
    if registry is not None:
        found.update({p.pid: p for p in recorded_processes(registry, run_id)})
    return list(found.values())


def recorded_processes(registry: str | Path, run_id: str) -> list[psutil.Process]:
    """The processes a run recorded starting that still live (pid and start time both
    match: a reused pid is someone else's), with the members of their process groups
    (each was started in a session of its own) born after them."""
    leaders: dict[int, float] = {}
    for path in pid_record_dir(registry, run_id).glob("*.json"):
        try:
            rec = json.loads(path.read_text())
            leaders[int(rec["pid"])] = float(rec["create_time"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not leaders:
        return []
    # A group is this run's while its leader lives with the recorded start time, or
    # while no process has the leader's pid: Linux does not hand out a pid that is still
    # some group's id, so then the members are the orphans of our leader. A live process
    # with that pid and another start time means the pid — and the group id — were
    # reused by someone else: not ours.
    groups: set[int] = set()
    procs = list(psutil.process_iter(["pid", "create_time"]))
    alive = {p.pid: p.info["create_time"] for p in procs}
    for pid, born in leaders.items():
        if pid not in alive or abs(alive[pid] - born) < 0.5:
            groups.add(pid)
    out: list[psutil.Process] = []
    for proc in procs:
        if proc.pid == os.getpid():
            continue
        try:
            if proc.pid in leaders:
                if proc.pid in groups and proc.status() != "zombie":
                    out.append(proc)
                continue
            if os.getpgid(proc.pid) in groups and proc.status() != "zombie":
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, OSError):
            continue
    return out


def all_marked_processes(registry: str | None) -> dict[str, list[psutil.Process]]:
    """run id -> live processes carrying it (one scan of the process table), limited to
    one registry when given: runs of another registry are not ours to judge."""
    out: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == os.getpid():
            continue
        try:
            env = proc.environ()
            run = env.get(RUN_ID_ENV)
            if registry is not None and env.get(REGISTRY_ENV) != registry:
                continue
            if run and proc.status() != "zombie":
                out.setdefault(run, []).append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return out


def kill_processes(procs: list[psutil.Process], grace: float = 3.0) -> None:
    for p in procs:
        try:
            p.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@dataclass
class RunRecord:
    run_id: str
    state_dir: str
    owner_pid: int
    owner_create_time: float
    mode: str  # "starting" | "session" | "detached"
    started: float

    def owner_alive(self) -> bool:
        return _owner_alive(self.owner_pid, self.owner_create_time)


class RunRegistry:
    def __init__(self, registry_dir: Path) -> None:
        self.root = str(registry_dir)
        self.dir = registry_dir / "runs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(registry_dir / "runs.lock"))
        self.ports = PortRegistry(registry_dir)

    def _path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.json"

    def _write(self, rec: RunRecord) -> None:
        """Atomic: a reader (the reaper of another process) sees the old or the new
        record, never an empty file it would take for "not registered"."""
        path = self._path(rec.run_id)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(rec)))
        os.replace(tmp, path)

    def register(self, run_id: str, state_dir: Path, mode: str) -> RunRecord:
        me = psutil.Process()
        rec = RunRecord(run_id, str(state_dir), me.pid, me.create_time(), mode, time.time())
        with self.lock:
            self._write(rec)
        return rec

    def get(self, run_id: str) -> RunRecord | None:
        try:
            return RunRecord(**json.loads(self._path(run_id).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def set_mode(self, run_id: str, mode: str) -> None:
        """Change a run's mode; taking it over ('session'/'starting') makes us its owner."""
        rec = self.get(run_id)
        if rec is None:
            return
        rec.mode = mode
        if mode != "detached":
            me = psutil.Process()
            rec.owner_pid, rec.owner_create_time = me.pid, me.create_time()
        with self.lock:
            self._write(rec)

    def records(self) -> list[RunRecord]:
        out = []
        for p in sorted(self.dir.glob("*.json")):
            rec = self.get(p.stem)
            if rec is not None:
                out.append(rec)
        return out

    def forget(self, run_id: str) -> None:
        with self.lock:
            self._path(run_id).unlink(missing_ok=True)
            shutil.rmtree(pid_record_dir(self.root, run_id), ignore_errors=True)
        self.ports.release(run_id)

    def _log(self, message: str) -> None:
        """`<registry>/reaper.log`: who reaped what and why — a run that vanished is
        explained there."""
        me = psutil.Process()
        line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {me.pid} "
                f"({' '.join(me.cmdline())[:120]}): {message}\n")
        with open(Path(self.root) / "reaper.log", "a") as fh:
            fh.write(line)

    def reap(self) -> list[str]:
        """Stop the leftovers of dead runs; returns the run ids reaped."""
        reaped: list[str] = []
        marked = all_marked_processes(self.root)
        known = {r.run_id for r in self.records()}
        for rec in self.records():
            dead_owner = rec.mode != "detached" and not rec.owner_alive()
            lost_state = not Path(rec.state_dir).exists()
            if dead_owner or lost_state:
                why = (f"state dir {rec.state_dir} is gone" if lost_state
                       else f"owner pid {rec.owner_pid} ({rec.mode}) is gone")
                self._log(f"reaped {rec.run_id}: {why}")
                # By run id alone: the run is ours, whatever registry path spelling its
                # processes carry.
                kill_processes(processes_of_run(rec.run_id, self.root))
                _mark_state_down(Path(rec.state_dir), rec.run_id)
                self.forget(rec.run_id)
                reaped.append(rec.run_id)
        # Processes whose run is not registered at all (registry wiped, or the run died
        # between spawning and registering): nothing can ever attach to them.
        for run_id, procs in marked.items():
            if run_id not in known:
                self._log(f"reaped {run_id}: {len(procs)} process(es) of an unregistered run")
                kill_processes(procs)
                self.ports.release(run_id)
                reaped.append(run_id)
        # Runs that recorded processes and are not registered: the markers may be gone
        # (a rewritten title), the pid records are not.
        for folder in sorted((Path(self.root) / PIDS_DIR).glob("*")):
            # Asked again per run: one registered since the scan began is not ours.
            if folder.name not in known and self.get(folder.name) is None:
                if recorded := recorded_processes(self.root, folder.name):
                    self._log(f"reaped {folder.name}: {len(recorded)} recorded process(es) "
                              "of an unregistered run")
                kill_processes(recorded)
                shutil.rmtree(folder, ignore_errors=True)
                if folder.name not in reaped:
                    self.ports.release(folder.name)
                    reaped.append(folder.name)
        # A real node's host changes (cgroups with containers in them, the kubelet's
        # sysctls) outlive its processes: undone for every node run of THIS registry
        # (its claim names the registry) that is no longer registered.
        for run_id in sysctl_runs(Path(self.root)):
            if self.get(run_id) is None:
                undone = release_host(run_id)
                self._log(f"released the node of {run_id}: {undone}")
                if run_id not in reaped:
                    reaped.append(run_id)
        return reaped


def _mark_state_down(state_dir: Path, run_id: str) -> None:
    """A dead run's environment record says down, and what the run kept outside its
    state directory (the record's temp_paths) is removed."""
    env_file = state_dir / "environment.json"
    try:
        data = json.loads(env_file.read_text())
    except (OSError, ValueError):
        return
    if data.get("run_id") == run_id:
        remove_temp_paths(list(data.get("temp_paths") or []))
        data["status"] = "down"
        data["reaped_at"] = time.time()
        tmp = env_file.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, env_file)
