import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runtime.ports import PortRegistry, bind_conflicts, bindable
from harness.runtime.registry import RunRegistry


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """This test's stand-in for the machine's reservation file."""
    monkeypatch.setenv("HERACLES_PORTS_DIR", str(tmp_path / "machine"))
    return tmp_path / "machine"


def test_two_runs_never_get_the_same_port(machine):
    reg_a = PortRegistry()
    reg_b = PortRegistry()  # a second session on the same machine
    a = reg_a.allocate("run-a", 40)
    b = reg_b.allocate("run-b", 40)
    assert len(set(a)) == 40 and len(set(b)) == 40
    assert not set(a) & set(b)
    assert reg_a.owned_by("run-b") == sorted(b)


def test_runs_of_two_registries_share_the_machines_reservations(machine, tmp_path):
    """The CI failure of 2026-12-03: a test's private registry gave its kube-apiserver the
    port the session's registry had given the platform's repo-server."""
    session, private = RunRegistry(tmp_path / "session"), RunRegistry(tmp_path / "private")
    mine = session.ports.allocate("platform", 40)
    theirs = private.ports.allocate("lifecycle", 40)
    assert not set(mine) & set(theirs)
    assert (machine / "ports.json").exists()
    assert not (tmp_path / "session" / "ports.json").exists()


def allocate_elsewhere(registry_dir: Path, run_id: str) -> int:
    """A port reserved by another process, which has exited since."""
    code = ("import sys; from pathlib import Path; "
            "from harness.runtime.ports import PortRegistry; "
            "print(PortRegistry(Path(sys.argv[1])).allocate(sys.argv[2], 1)[0])")
    out = subprocess.run([sys.executable, "-c", code, str(registry_dir), run_id],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_a_dead_processs_unregistered_reservation_is_dropped(machine, tmp_path):
    registry = RunRegistry(tmp_path / "reg")
    port = allocate_elsewhere(tmp_path / "reg", "crashed-before-registering")
    assert registry.ports.owned_by("crashed-before-registering") == [port]
    registry.ports.allocate("next", 1)
    assert registry.ports.owned_by("crashed-before-registering") == []


def test_a_registered_runs_reservation_outlives_the_command_that_made_it(machine, tmp_path):
    """`harness up` (detached) exits; its environment keeps its ports."""
    registry = RunRegistry(tmp_path / "reg")
    registry.register("detached-run", tmp_path, "detached")
    port = allocate_elsewhere(tmp_path / "reg", "detached-run")
    others = registry.ports.allocate("next", 200)
    assert port not in others
    assert registry.ports.owned_by("detached-run") == [port]
    registry.forget("detached-run")
    assert registry.ports.owned_by("detached-run") == []


def test_a_lease_holds_its_port_until_the_block_ends(machine):
    reg = PortRegistry()
    with reg.lease(2) as ports:
        assert sorted(ports) == sorted(p for p in (int(k) for k in
                                                   reg._read()) if p in ports)
        assert not set(ports) & set(reg.allocate("run", 100))
    assert not set(ports) & {int(k) for k in reg._read()}


def test_a_bind_failure_names_who_holds_the_port(machine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        log = (f'{{"level":"fatal","msg":"listen tcp 127.0.0.1:{port}: bind: address '
               'already in use"}')
        said = bind_conflicts(log)
        assert f"port {port} is held by pid " in said and "python" in said
    assert bind_conflicts("listening on 127.0.0.1:8080") == ""


def test_a_taken_port_is_not_reserved_and_another_is_chosen(machine):
    reg = PortRegistry()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not bindable(taken)
        got = reg.reserve("run", {"api": taken})
        assert got == {}
        fresh = reg.allocate("run", 1)[0]
        assert fresh != taken and bindable(fresh)


def test_reserve_keeps_own_ports_and_release_frees_them(machine):
    reg = PortRegistry()
    [port] = reg.allocate("run", 1)
    assert reg.reserve("run", {"x": port}) == {"x": port}
    assert reg.reserve("other", {"x": port}) == {}  # owned by another run
    reg.release("run")
    assert reg.owned_by("run") == []
    assert reg.reserve("other", {"x": port}) == {"x": port}


def test_a_span_reserves_the_next_port_too(machine):
    reg = PortRegistry()
    [api] = reg.allocate("run", 1, span=2)
    assert reg.owned_by("run") == [api, api + 1]
    assert bindable(api) and bindable(api + 1)
    others = reg.allocate("other", 30)
    assert api not in others and api + 1 not in others
