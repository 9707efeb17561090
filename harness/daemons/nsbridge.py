"""The bridge between the host and the real node's network namespace, in user space, so
neither side needs an address, a route or a firewall rule of the other:

- `--to-host NS_ADDR=HOST_ADDR`: listens inside the node's namespace (the apiserver's
  advertised address, what the `kubernetes` Service's endpoints name) and connects on the
  host (the apiserver on 127.0.0.1);
- `--egress UDS`: an HTTP CONNECT proxy on a unix socket, the apiserver's egress for the
  "cluster" (EgressSelectorConfiguration, as konnectivity serves it): logs, exec and
  port-forward to the kubelet, webhooks and Services in the node's namespace; a
  destination on 127.0.0.1 is dialled on the host (KWOK's kubelets, local webhooks);
- `--from-host HOST_ADDR=NS_ADDR`: listens on the host's 127.0.0.1 and connects inside
  the node's namespace (the kubelet's healthz); `--forwards-file` holds more of these,
  re-read on SIGHUP (Services chosen while the node runs: `Node.expose`), and to-host
  ones written `node:NS_ADDR=HOST_ADDR` (host services Pods use: `Node.publish`).

A socket belongs to the namespace it was created in, whatever thread or namespace later
uses it: the daemon creates each one after `setns` into the right namespace and returns.

`python -m harness.daemons.nsbridge --netns /proc/PID/ns/net [...]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Namespaces:
    def __init__(self, netns: str) -> None:
        self.host = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.node = os.open(netns, os.O_RDONLY)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Sockets made in this block belong to the node's namespace."""
        _setns(self.node)
        try:
            yield
        finally:
            _setns(self.host)

    def socket(self, in_node: bool) -> socket.socket:
        if not in_node:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with self.inside():
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def split_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def splice(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                 up_r: asyncio.StreamReader, up_w: asyncio.StreamWriter) -> None:
    try:
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
    finally:
        for w in (client_w, up_w):
            w.close()


async def dial(ns: Namespaces, addr: tuple[str, int], in_node: bool
               ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = ns.socket(in_node)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, addr), timeout=10)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def listener(ns: Namespaces, addr: tuple[str, int], in_node: bool) -> socket.socket:
    sock = ns.socket(in_node)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_forward(ns: Namespaces, listen: tuple[str, int], listen_in_node: bool,
                        target: tuple[str, int], target_in_node: bool) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await dial(ns, target, target_in_node)
        except (TimeoutError, OSError):
            w.close()
            return
        await splice(r, w, up_r, up_w)

    return await asyncio.start_server(handle, sock=listener(ns, listen, listen_in_node))


def egress_target_in_node(host: str) -> bool | None:
    """Where a CONNECT destination is dialled: host loopback (False), the node's
    namespace (True), or refused (None: a name, or the host's other addresses)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback:
        return False
    return True if ip.version == 4 else None


async def serve_egress(ns: Namespaces, path: Path) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout=10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            host, port = split_addr(target)
            in_node = egress_target_in_node(host)
            if method != "CONNECT" or in_node is None:
                w.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                await w.drain()
                w.close()
                return
            up_r, up_w = await dial(ns, (host, port), in_node)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            with contextlib.suppress(Exception):
                w.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                await w.drain()
            w.close()
            return
        w.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await w.drain()
        await splice(r, w, up_r, up_w)

    path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(handle, path=str(path))
    path.chmod(0o600)
    return server


class Forwards:
    """The forwards named in a JSON file — a list of "HOST=NS" (host -> node) and
    "node:NS=HOST" (node -> host) strings — opened and closed to match it whenever the
    daemon gets SIGHUP."""

    def __init__(self, ns: Namespaces, path: Path) -> None:
        self.ns = ns
        self.path = path
        self.open: dict[str, asyncio.Server] = {}

    async def sync(self) -> None:
        try:
            wanted = set(json.loads(self.path.read_text())) if self.path.exists() else set()
        except (OSError, ValueError):
            return  # half-written: the writer renames into place, so the next HUP reads it
        for spec in set(self.open) - wanted:
            self.open.pop(spec).close()
        for spec in sorted(wanted - set(self.open)):
            to_host = spec.startswith("node:")
            listen, target = spec.removeprefix("node:").split("=", 1)
            try:
                self.open[spec] = await serve_forward(self.ns, split_addr(listen), to_host,
                                                      split_addr(target), not to_host)
            except OSError:
                continue  # the port was taken meanwhile: the caller sees it never opens
        (self.path.parent / (self.path.name + ".applied")).write_text(
            json.dumps(sorted(self.open)))


def add_forward(forwards: Path, pid: int | None, spec: str, what: str) -> None:
    """One more forward in a running daemon's `--forwards-file`, applied (SIGHUP) before
    returning; the caller's side (the harness), not the daemon's."""
    from harness.errors import HarnessError
    from harness.wait import eventually

    try:
        specs = set(json.loads(forwards.read_text()))
    except (OSError, ValueError):
        specs = set()
    tmp = forwards.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted({*specs, spec})))
    tmp.replace(forwards)
    if not pid:
        raise HarnessError(f"the bridge carrying {what} is not running")
    os.kill(pid, signal.SIGHUP)
    applied = forwards.with_name(forwards.name + ".applied")
    eventually(lambda: applied.exists() and spec in json.loads(applied.read_text()),
               timeout=10, error=HarnessError, retry_on=(ValueError, OSError),
               description=f"the bridge forwards {spec} ({what})")


async def main_async(args: argparse.Namespace) -> None:
    netns = args.netns or f"/proc/{Path(args.netns_pid_file).read_text().split()[0]}/ns/net"
    ns = Namespaces(netns)
    servers = []
    for spec in args.to_host:
        listen, target = spec.split("=", 1)
        servers.append(await serve_forward(ns, split_addr(listen), True,
                                           split_addr(target), False))
    for spec in args.from_host:
        listen, target = spec.split("=", 1)
        servers.append(await serve_forward(ns, split_addr(listen), False,
                                           split_addr(target), True))
    if args.egress:
        servers.append(await serve_egress(ns, Path(args.egress)))
    loop = asyncio.get_running_loop()
    if args.forwards_file:
        forwards = Forwards(ns, Path(args.forwards_file))
        await forwards.sync()
        loop.add_signal_handler(signal.SIGHUP,
                                lambda: asyncio.ensure_future(forwards.sync()))
    if args.ready_file:
        Path(args.ready_file).write_text(f"{os.getpid()}\n")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--netns", help="/proc/PID/ns/net of the node")
    where.add_argument("--netns-pid-file", help="a file holding the pid of the process "
                       "that holds the node's namespaces")
    parser.add_argument("--to-host", action="append", default=[], metavar="NS=HOST")
    parser.add_argument("--from-host", action="append", default=[], metavar="HOST=NS")
    parser.add_argument("--egress", help="unix socket path of the CONNECT proxy")
    parser.add_argument("--forwards-file", help='JSON list of "HOST=NS" forwards, re-read '
                        "on SIGHUP")
    parser.add_argument("--ready-file", help="written once every listener is open")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
