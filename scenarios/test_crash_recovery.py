"""A pytest session killed with -9 leaves nothing behind once the next run starts
(issue 13): the reaper finds every process the dead run started — redis-server too, which
rewrites its title and with it /proc/<pid>/environ, the run-id marker — and a rerun on
the same `--harness-state-dir` does not adopt the dead session's environment as a
detached one (which leaked a whole environment)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness import eventually
from harness.runtime.registry import RunRegistry, processes_of_run
from scenarios.helpers import outside_xdist

pytestmark = [pytest.mark.slow, pytest.mark.scenario]

INNER = '''
import os, pathlib
from harness import eventually

def test_hold(platform):
    pathlib.Path(os.environ["HOLD_MARKER"]).write_text(platform.record.run_id)
    never = pathlib.Path(os.environ["HOLD_MARKER"] + ".never")
    eventually(never.exists, timeout=600, interval=1, description="killed before this")

def test_quick(platform):
    assert platform.record.is_up
'''


def _pytest(tmp: Path, state: Path, registry: Path, test: str) -> subprocess.Popen[str]:
    env = {**outside_xdist(), "HERACLES_REGISTRY_DIR": str(registry),
           "HOLD_MARKER": str(tmp / "marker")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", test,
         "--harness-state-dir", str(state), "--harness-components", "etcd,kube,git,argocd",
         str(tmp / "test_hold.py")],
        cwd=tmp, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_a_sigkilled_session_leaves_no_process_redis_included(tmp_path: Path) -> None:
    (tmp_path / "test_hold.py").write_text(INNER)
    state, registry = tmp_path / "state", tmp_path / "registry"
    first = _pytest(tmp_path, state, registry, "hold")
    try:
        run_id = eventually(lambda: (tmp_path / "marker").exists()
                            and (tmp_path / "marker").read_text(), timeout=300,
                            interval=0.5, description="the first session's environment up")
        record = json.loads((state / "environment.json").read_text())
        redis_record = json.loads(
            (registry / "pids" / run_id / "argocd-redis.json").read_text())
        redis = psutil.Process(redis_record["pid"])
        assert "redis-server" in " ".join(redis.cmdline())
        # What the old reaper relied on is gone for redis: no run-id marker to find it by.
        assert "HERACLES_RUN_ID" not in redis.environ()
        os.kill(first.pid, signal.SIGKILL)  # pytest only: its environment keeps running
        first.wait(timeout=30)
        assert redis.is_running()
        assert record["status"] == "up"
    finally:
        if first.poll() is None:
            first.kill()

    # The rerun on the same state directory reaps the dead session, runs its own
    # environment and takes it down at the end: nothing is left, nothing detached.
    second = _pytest(tmp_path, state, registry, "quick")
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    assert not redis.is_running() or redis.status() == psutil.STATUS_ZOMBIE
    assert processes_of_run(run_id, registry) == []
    assert RunRegistry(registry).records() == []  # no run left registered (detached)
    leftovers = [p for p in psutil.process_iter(["pid"])
                 if _environ(p).get("HERACLES_REGISTRY") == str(registry)]
    assert leftovers == [], [p.cmdline() for p in leftovers]
    assert json.loads((state / "environment.json").read_text())["status"] == "down"


def _environ(proc: psutil.Process) -> dict[str, str]:
    try:
        return dict(proc.environ())
    except (psutil.Error, OSError):
        return {}
