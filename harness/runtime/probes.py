"""Readiness probes: small HTTP(S) checks with a short timeout, like a kubelet's."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable
from pathlib import Path


def hostport(url: str) -> str:
    """'https://127.0.0.1:6443/metrics' -> '127.0.0.1:6443' (what scrape targets and
    proxies take)."""
    return url.split("://", 1)[-1].split("/", 1)[0]


def tls_context(ca: Path | None, cert: Path | None = None,
                key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def http_get(url: str, ca: Path | None = None, cert: Path | None = None,
             key: Path | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    scheme, rest = url.split("://", 1)
    hostport, _, path = rest.partition("/")
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(hostport, timeout=timeout,
                                           context=tls_context(ca, cert, key))
    else:
        conn = http.client.HTTPConnection(hostport, timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_ok(url: str, ca: Path | None = None, cert: Path | None = None,
            key: Path | None = None, expect: bytes | None = None) -> Callable[[], bool]:
    """A probe: True when GET url answers 200 (and contains `expect`, if given)."""

    def probe() -> bool:
        try:
            status, body = http_get(url, ca, cert, key)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and (expect is None or expect in body)

    return probe


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A probe: True when something accepts TCP connections on host:port."""
    import socket

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    return probe
