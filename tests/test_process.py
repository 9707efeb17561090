"""ManagedProcess against real OS processes (a tiny HTTP server, a TERM-ignoring shell)."""

import sys
import time
from pathlib import Path

import pytest

from harness.errors import ComponentStartError
from harness.runtime.ports import PortRegistry
from harness.runtime.probes import http_ok
from harness.runtime.process import ManagedProcess, ProcessSpec


@pytest.fixture
def port(tmp_path):
    return PortRegistry(tmp_path / "reg").allocate("test", 1)[0]


def http_server(tmp_path: Path, port: int, **kw) -> ManagedProcess:
    data = tmp_path / "data"
    spec = ProcessSpec(
        name="web", argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                          str(port), "--directory", str(data)],
        log_path=tmp_path / "logs" / "web.log", probe=http_ok(f"http://127.0.0.1:{port}/"),
        data_dir=data, start_timeout=kw.get("start_timeout", 20), stop_grace=2)
    return ManagedProcess(spec, run_id="unit-run", registry=str(tmp_path / "reg"))


def test_start_ready_pause_resume_restart_stop(tmp_path, port):
    proc = http_server(tmp_path, port)
    proc.start()
    assert proc.running() and proc.ready()
    (tmp_path / "data" / "kept.txt").write_text("survives restart")
    first_pid = proc.pid

    proc.pause()
    assert proc.running() and not proc.ready()
    proc.resume()
    assert proc.ready()

    proc.restart()
    assert proc.pid != first_pid and proc.ready()
    assert (tmp_path / "data" / "kept.txt").read_text() == "survives restart"

    proc.kill()
    assert not proc.running()
    proc.start()
    proc.stop()
    assert not proc.running()
    assert "start web" in (tmp_path / "logs" / "web.log").read_text()


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    spec = ProcessSpec(
        name="stubborn", argv=["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.1; done"],
        log_path=tmp_path / "stubborn.log", stop_grace=1,
        probe=lambda: "up" in (tmp_path / "stubborn.log").read_text().split("start stubborn")[-1])
    proc = ManagedProcess(spec, run_id="unit-run")
    proc.start()
    t0 = time.monotonic()
    proc.stop()
    assert not proc.running()
    assert 0.9 < time.monotonic() - t0 < 8


def test_an_exiting_process_fails_start_with_its_log_tail(tmp_path):
    spec = ProcessSpec(
        name="broken", argv=["sh", "-c", "echo 'bad flag --nope' >&2; exit 3"],
        log_path=tmp_path / "broken.log", probe=lambda: False, start_timeout=10)
    with pytest.raises(ComponentStartError, match=r"broken exited with code 3(.|\n)*bad flag"):
        ManagedProcess(spec, run_id="unit-run").start()


def test_a_missed_deadline_kills_the_process(tmp_path, port):
    spec = ProcessSpec(
        name="slow", argv=["sh", "-c", "echo starting; exec sleep 60"],
        log_path=tmp_path / "slow.log", probe=http_ok(f"http://127.0.0.1:{port}/"),
        start_timeout=1)
    proc = ManagedProcess(spec, run_id="unit-run")
    with pytest.raises(ComponentStartError, match="slow was not ready within its 1s deadline"):
        proc.start()
    assert not proc.running()
