"""Free ports on 127.0.0.1 that no other harness run on this machine will also pick.

port-for finds ports nothing listens on; that alone races when two sessions start at
once (both see the port free, both bind later). So every choice is also written to a
machine-wide reservation file under a file lock, owned by a run id, and released when the
run goes down or is reaped.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import port_for
from filelock import FileLock

from harness.errors import HarnessError


def holder(port: int) -> str:
    """Who listens on 127.0.0.1:`port` (pid and command), for an error that says it."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return "an unknown process"
    for c in conns:
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN:
            if c.pid is None:
                return "an unknown process"
            try:
                cmd = " ".join(psutil.Process(c.pid).cmdline())[:80]
            except psutil.Error:
                cmd = "?"
            return f"pid {c.pid} ({cmd})"
    return "another harness run (reserved)"


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR as servers set it
    (Go, Python's http.server): connections in TIME_WAIT from a stopped environment must
    not make its ports look taken, or a restart moves them (and URLs baked into Git or
    cluster objects go stale)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortRegistry:
    def __init__(self, registry_dir: Path) -> None:
        registry_dir.mkdir(parents=True, exist_ok=True)
        self.path = registry_dir / "ports.json"
        self.lock = FileLock(str(registry_dir / "ports.lock"))

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def allocate(self, run_id: str, count: int = 1, span: int = 1) -> list[int]:
        """Reserve `count` ports for `run_id`; each is free to bind right now. With
        span=2 each chosen port P also reserves P+1 (Vault's cluster port is api+1)."""
        with self.lock:
            data = self._read()
            taken = {int(p) for p in data}
            chosen: list[int] = []
            for _ in range(count):
                for _attempt in range(50):
                    try:
                        port = port_for.select_random(exclude_ports=taken | set(chosen))
                    except port_for.PortForException as exc:
                        raise HarnessError(f"no free port on 127.0.0.1: {exc}") from exc
                    block = range(port, port + span)
                    if block[-1] > 65535:
                        continue
                    if all(bindable(p) and p not in taken and p not in chosen for p in block):
                        chosen.extend(block)
                        break
                else:
                    raise HarnessError("no bindable free port on 127.0.0.1 after 50 tries")
            for p in chosen:
                data[str(p)] = run_id
            self._write(data)
        return chosen[::span]

    def reserve(self, run_id: str, wanted: dict[str, int],
                spans: dict[str, int] | None = None) -> dict[str, int]:
        """Re-reserve specific ports (with the block each spans) when still free;
        returns the ones obtained."""
        got: dict[str, int] = {}
        with self.lock:
            data = self._read()
            for key, port in wanted.items():
                block = range(port, port + (spans or {}).get(key, 1))
                if all(data.get(str(p)) in (None, run_id) and bindable(p) for p in block):
                    for p in block:
                        data[str(p)] = run_id
                    got[key] = port
            self._write(data)
        return got

    def owned_by(self, run_id: str) -> list[int]:
        with self.lock:
            return sorted(int(p) for p, r in self._read().items() if r == run_id)

    def release(self, run_id: str) -> None:
        with self.lock:
            data = {p: r for p, r in self._read().items() if r != run_id}
            self._write(data)
