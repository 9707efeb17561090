import socket

from harness.runtime.ports import PortRegistry, bindable


def test_two_runs_never_get_the_same_port(tmp_path):
    reg_a = PortRegistry(tmp_path)
    reg_b = PortRegistry(tmp_path)  # a second session on the same machine
    a = reg_a.allocate("run-a", 40)
    b = reg_b.allocate("run-b", 40)
    assert len(set(a)) == 40 and len(set(b)) == 40
    assert not set(a) & set(b)
    assert reg_a.owned_by("run-b") == sorted(b)


def test_a_taken_port_is_not_reserved_and_another_is_chosen(tmp_path):
    reg = PortRegistry(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not bindable(taken)
        got = reg.reserve("run", {"api": taken})
        assert got == {}
        fresh = reg.allocate("run", 1)[0]
        assert fresh != taken and bindable(fresh)


def test_reserve_keeps_own_ports_and_release_frees_them(tmp_path):
    reg = PortRegistry(tmp_path)
    [port] = reg.allocate("run", 1)
    assert reg.reserve("run", {"x": port}) == {"x": port}
    assert reg.reserve("other", {"x": port}) == {}  # owned by another run
    reg.release("run")
    assert reg.owned_by("run") == []
    assert reg.reserve("other", {"x": port}) == {"x": port}


def test_a_span_reserves_the_next_port_too(tmp_path):
    reg = PortRegistry(tmp_path)
    [api] = reg.allocate("run", 1, span=2)
    assert reg.owned_by("run") == [api, api + 1]
    assert bindable(api) and bindable(api + 1)
    others = reg.allocate("other", 30)
    assert api not in others and api + 1 not in others
