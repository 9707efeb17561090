"""Free ports on 127.0.0.1 that no other harness run on this machine will also pick.

port-for finds ports nothing listens on; that alone races when two runs start at once
(both see the port free, both bind later). So every choice is also written to ONE
reservation file per user and machine, under a file lock, owned by a run id, and released
when the run goes down or is reaped. The file is not the run registry's: ports belong to
the machine, and two registries (a test's private one, a second checkout's) once handed
out the same port to two environments at once (CI, 2026-12-03: a lifecycle test's
kube-apiserver took the session platform's repo-server port).

A reservation lasts while its run is registered (its registry still holds the run's
record: a detached environment outlives the command that started it) or while the process
that made it lives; one with neither is stale and dropped at the next choice.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import port_for
import psutil
from filelock import FileLock

from harness.errors import HarnessError

PORTS_DIR_ENV = "HERACLES_PORTS_DIR"


def machine_ports_dir() -> Path:
    """Where this user's reservations live on this machine ($HERACLES_PORTS_DIR, else
    /tmp/heracles-harness-ports-<uid>): the same for every registry and checkout."""
    return Path(os.environ.get(PORTS_DIR_ENV) or f"/tmp/heracles-harness-ports-{os.getuid()}")


def holder(port: int) -> str:
    """Who listens on 127.0.0.1:`port` (pid and command), for an error that says it."""
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


_IN_USE = re.compile(r":(\d{2,5})\b[^\n]*address already in use")


def bind_conflicts(text: str) -> str:
    """For a start failure's log: who holds each port it could not bind ('' if none)."""
    ports = sorted({int(p) for p in _IN_USE.findall(text)})
    return "".join(f"\nport {p} is held by {holder(p)}" for p in ports)


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


def _process_alive(pid: int, create_time: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - create_time) < 0.5
    except psutil.Error:
        return False


class PortRegistry:
    def __init__(self, registry_dir: Path | None = None) -> None:
        """`registry_dir`: the run registry whose runs reserve through this object (a
        reservation lasts while its run is recorded there)."""
        directory = machine_ports_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "ports.json"
        self.lock = FileLock(str(directory / "ports.lock"))
        self.registry = str(registry_dir) if registry_dir is not None else None
        me = psutil.Process()
        self._me = {"pid": me.pid, "ctime": me.create_time()}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {p: e for p, e in data.items() if isinstance(e, dict) and "run" in e}

    def _live(self, data: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`data` without its stale reservations (see the module's docstring)."""
        verdict: dict[tuple[str, str | None, int, float], bool] = {}
        kept = {}
        for port, e in data.items():
            key = (e["run"], e.get("registry"), int(e.get("pid", 0)), float(e.get("ctime", 0)))
            if key not in verdict:
                registered = key[1] is not None and \
                    (Path(key[1]) / "runs" / f"{key[0]}.json").exists()
                verdict[key] = registered or _process_alive(key[2], key[3])
            if verdict[key]:
                kept[port] = e
        return kept

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def _entry(self, run_id: str) -> dict[str, Any]:
        return {"run": run_id, "registry": self.registry, **self._me}

    def allocate(self, run_id: str, count: int = 1, span: int = 1) -> list[int]:
        """Reserve `count` ports for `run_id`; each is free to bind right now. With
        span=2 each chosen port P also reserves P+1 (Vault's cluster port is api+1)."""
        with self.lock:
            data = self._live(self._read())
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
                data[str(p)] = self._entry(run_id)
            self._write(data)
        return chosen[::span]

    def reserve(self, run_id: str, wanted: dict[str, int],
                spans: dict[str, int] | None = None) -> dict[str, int]:
        """Re-reserve specific ports (with the block each spans) when still free;
        returns the ones obtained."""
        got: dict[str, int] = {}
        with self.lock:
            data = self._live(self._read())
            for key, port in wanted.items():
                block = range(port, port + (spans or {}).get(key, 1))
                if all(data.get(str(p), {}).get("run") in (None, run_id) and bindable(p)
                       for p in block):
                    for p in block:
                        data[str(p)] = self._entry(run_id)
                    got[key] = port
            self._write(data)
        return got

    def owned_by(self, run_id: str) -> list[int]:
        with self.lock:
            return sorted(int(p) for p, e in self._read().items() if e["run"] == run_id)

    def release(self, run_id: str) -> None:
        with self.lock:
            data = {p: e for p, e in self._read().items() if e["run"] != run_id}
            self._write(data)

    @contextmanager
    def lease(self, count: int = 1) -> Iterator[list[int]]:
        """Ports for a listener that is no environment's (a test's server, a port-forward):
        reserved like a run's for as long as the block lasts, or this process lives."""
        owner = f"lease-{uuid.uuid4().hex[:12]}"
        ports = self.allocate(owner, count)
        try:
            yield ports
        finally:
            self.release(owner)
