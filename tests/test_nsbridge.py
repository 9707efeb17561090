"""The node's bridge and runc wrapper against the real kernel: a network namespace of
our own with a server inside it, reached from the host only through the bridge."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.daemons.nsbridge import egress_target_in_node
from harness.runtime import runc_wrapper

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"inside:" + c.recv(64)); c.close()
"""


@pytest.fixture
def netns() -> Iterator[int]:
    """A network namespace holding only lo (+ 10.99.0.1), kept by a sleeping process."""
    holder = subprocess.Popen(["unshare", "--net", "sh", "-c",
                               "ip link set lo up && ip addr add 10.99.0.1/32 dev lo && "
                               "exec sleep 300"])
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def _exchange(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(128)


def test_bridge_reaches_inside_the_namespace_and_refuses_names(netns: int, tmp_path: Path,
                                                              free_port: int) -> None:
    server = subprocess.Popen(["nsenter", f"--net=/proc/{netns}/ns/net", sys.executable,
                               "-c", SERVER, "10.99.0.1", "8080"], stdout=subprocess.PIPE)
    assert server.stdout is not None and server.stdout.readline().startswith(b"listening")
    host_port = free_port
    egress = tmp_path / "egress.sock"
    ready = tmp_path / "ready"
    bridge = subprocess.Popen([sys.executable, "-m", "harness.daemons.nsbridge",
                               "--netns", f"/proc/{netns}/ns/net", "--egress", str(egress),
                               "--from-host", f"127.0.0.1:{host_port}=10.99.0.1:8080",
                               "--ready-file", str(ready)])
    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert time.monotonic() < deadline and bridge.poll() is None
            time.sleep(0.05)
        assert ready.read_text().strip() == str(bridge.pid)
        # The address exists only inside the namespace (never dialled from the host: that
        # would leave the machine through its default route)...
        host_addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True,
                                    text=True).stdout
        assert "10.99.0.1" not in host_addrs
        # ...the forward reaches it,
        with socket.create_connection(("127.0.0.1", host_port), timeout=5) as s:
            assert _exchange(s, b"fwd") == b"inside:fwd"
        # and so can the apiserver's egress proxy (CONNECT over the unix socket).
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(egress))
            s.sendall(b"CONNECT 10.99.0.1:8080 HTTP/1.1\r\nHost: 10.99.0.1:8080\r\n\r\n")
            assert s.recv(128).startswith(b"HTTP/1.1 200")
            assert _exchange(s, b"egress") == b"inside:egress"
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(egress))
            s.sendall(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            assert s.recv(128).startswith(b"HTTP/1.1 403")
        assert oct(egress.stat().st_mode & 0o777) == "0o600"
    finally:
        bridge.terminate()
        server.kill()
        bridge.wait(10)
        server.wait(10)


def test_egress_destinations() -> None:
    assert egress_target_in_node("127.0.0.1") is False  # KWOK's kubelets, on the host
    assert egress_target_in_node("172.30.0.2") is True  # the real kubelet
    assert egress_target_in_node("10.244.0.7") is True  # a Pod (webhook)
    assert egress_target_in_node("heracles-node") is None  # never resolved on the host
    assert egress_target_in_node("::1") is False
    assert egress_target_in_node("fd00::1") is None


def test_runc_wrapper_drops_only_what_the_bounding_set_lacks(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_BIND_SERVICE"]
    (bundle / "config.json").write_text(json.dumps(
        {"process": {"capabilities": {"bounding": caps, "effective": caps}}}))
    runc_wrapper.strip(str(bundle / "config.json"), False, {"CAP_SYS_RESOURCE"})
    kept = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert kept == {"bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]}
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"permitted": caps}}))
    runc_wrapper.strip(str(process), True, {"CAP_SYS_RESOURCE"})
    assert "CAP_SYS_RESOURCE" not in process.read_text()
    # What this machine lacks, read from the kernel: a name for every missing bit.
    bounding = int(next(line.split()[1] for line in Path("/proc/self/status").read_text()
                        .splitlines() if line.startswith("CapBnd:")), 16)
    missing = runc_wrapper.missing_caps()
    assert len(missing) == sum(1 for bit in range(len(runc_wrapper.CAPS))
                               if not (bounding >> bit) & 1)


def test_forwards_file_opens_node_to_host_forwards_on_sighup(netns: int, tmp_path: Path,
                                                            free_port: int) -> None:
    """`node:NS=HOST` entries (Node.publish): a listener inside the namespace that
    reaches a server on the host's 127.0.0.1 — what a Pod's Service to the harness's Git
    server or alert receiver rides on. Added and removed while the bridge runs."""
    host_port = free_port
    server = subprocess.Popen([sys.executable, "-c", SERVER, "127.0.0.1", str(host_port)],
                              stdout=subprocess.PIPE)
    assert server.stdout is not None and server.stdout.readline().startswith(b"listening")
    forwards, ready = tmp_path / "forwards.json", tmp_path / "ready"
    applied = tmp_path / "forwards.json.applied"
    bridge = subprocess.Popen([sys.executable, "-m", "harness.daemons.nsbridge",
                               "--netns", f"/proc/{netns}/ns/net",
                               "--forwards-file", str(forwards), "--ready-file", str(ready)])

    def inside(data: bytes) -> subprocess.CompletedProcess[bytes]:
        client = ("import socket, sys; s = socket.create_connection(('10.99.0.1', "
                  f"{host_port}), timeout=5); s.sendall(sys.argv[1].encode()); "
                  "print(s.recv(64).decode())")
        return subprocess.run(["nsenter", f"--net=/proc/{netns}/ns/net", sys.executable,
                               "-c", client, data.decode()], capture_output=True, timeout=20)

    def sync(specs: list[str]) -> None:
        forwards.write_text(json.dumps(specs))
        applied.unlink(missing_ok=True)
        bridge.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not (applied.exists() and json.loads(applied.read_text()) == specs):
            assert time.monotonic() < deadline and bridge.poll() is None
            time.sleep(0.05)

    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert time.monotonic() < deadline and bridge.poll() is None
            time.sleep(0.05)
        assert inside(b"x").returncode != 0  # nothing listens inside yet
        sync([f"node:10.99.0.1:{host_port}=127.0.0.1:{host_port}"])
        reached = inside(b"pod")
        assert reached.stdout.strip() == b"inside:pod", reached.stderr
        sync([])
        assert inside(b"x").returncode != 0  # closed again
    finally:
        bridge.terminate()
        server.kill()
        bridge.wait(10)
        server.wait(10)
