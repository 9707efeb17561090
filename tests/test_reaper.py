"""The reaper against real processes: leftovers of dead runs go, live runs stay."""

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV
from harness.runtime.registry import RunRecord, RunRegistry, processes_of_run


def spawn_marked(run_id: str, registry: str) -> subprocess.Popen:
    env = {**os.environ, RUN_ID_ENV: run_id, REGISTRY_ENV: registry}
    return subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)


def dead_owner() -> tuple[int, float]:
    """pid + start time of a process that has exited (as a SIGKILLed pytest would be)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    create = psutil.Process(p.pid).create_time()
    p.wait()
    return p.pid, create


@pytest.fixture
def registry(tmp_path):
    return RunRegistry(tmp_path / "registry")


def write(registry: RunRegistry, rec: RunRecord) -> None:
    import json
    from dataclasses import asdict

    (registry.dir / f"{rec.run_id}.json").write_text(json.dumps(asdict(rec)))


def test_leftovers_of_a_run_whose_owner_died_are_reaped(registry, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "environment.json").write_text('{"run_id": "dead-run", "status": "up"}')
    leftover = spawn_marked("dead-run", registry.root)
    pid, created = dead_owner()
    write(registry, RunRecord("dead-run", str(state), pid, created, "session", 0))
    registry.ports.allocate("dead-run", 3)

    assert registry.reap() == ["dead-run"]
    assert leftover.wait(timeout=10) is not None
    assert registry.get("dead-run") is None
    assert registry.ports.owned_by("dead-run") == []
    assert '"status": "down"' in (state / "environment.json").read_text()


def test_what_a_dead_run_kept_outside_its_state_dir_is_removed(registry, tmp_path):
    """Its record's temp_paths (a socket directory, a socket) go with it; a path outside
    the temp dir is never touched, whatever the record says."""
    import json
    import socket

    sock_dir = tmp_path / "heracles-pg-test"
    sock_dir.mkdir()
    (sock_dir / ".s.PGSQL.5432.lock").write_text("4242\n")
    grpc = tmp_path / "g.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(grpc))
    listener.close()
    elsewhere = Path(os.path.expanduser("~")) / ".heracles-reaper-test-keep"
    elsewhere.write_text("not the reaper's")
    try:
        state = tmp_path / "state"
        state.mkdir()
        (state / "environment.json").write_text(json.dumps({
            "run_id": "dead-run", "status": "up",
            "temp_paths": [str(sock_dir), str(grpc), str(elsewhere)]}))
        pid, created = dead_owner()
        write(registry, RunRecord("dead-run", str(state), pid, created, "session", 0))

        assert registry.reap() == ["dead-run"]
        assert not sock_dir.exists() and not grpc.exists()
        assert elsewhere.read_text() == "not the reaper's"
    finally:
        elsewhere.unlink(missing_ok=True)


def test_a_detached_environment_is_not_reaped(registry, tmp_path):
    proc = spawn_marked("kept-run", registry.root)
    try:
        pid, created = dead_owner()  # `harness up` exited long ago: that is normal
        write(registry, RunRecord("kept-run", str(tmp_path), pid, created, "detached", 0))
        assert registry.reap() == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_live_session_is_not_reaped(registry, tmp_path):
    proc = spawn_marked("live-run", registry.root)
    try:
        registry.register("live-run", tmp_path, "session")  # owner: this pytest process
        assert registry.reap() == []
        assert [p.pid for p in processes_of_run("live-run")] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()


def test_unregistered_processes_of_this_registry_are_reaped_but_not_others(registry):
    ours = spawn_marked("never-registered", registry.root)
    theirs = spawn_marked("other-registry-run", "/some/other/registry")
    try:
        assert registry.reap() == ["never-registered"]
        assert ours.wait(timeout=10) is not None
        assert theirs.poll() is None
    finally:
        theirs.kill()
        theirs.wait()
