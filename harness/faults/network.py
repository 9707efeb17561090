"""Network faults on the local backend: Toxiproxy sits in front of a component's
in-cluster address (latency, timeout, connection reset, partition) — real TCP behaviour
between a client (ESO) and the component."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol


class ToxicProxy(Protocol):
    """Toxiproxy's API as the local backend's `netfault` component offers it."""

    def add_toxic(self, proxy: str, name: str, kind: str, attributes: dict[str, Any],
                  stream: str = ...) -> None: ...

    def remove_toxic(self, proxy: str, name: str) -> None: ...

    def set_enabled(self, proxy: str, enabled: bool) -> None: ...

    def reset(self) -> None: ...


class NetworkFaults:
    def __init__(self, proxy: ToxicProxy) -> None:
        self.net = proxy

    @contextmanager
    def _toxic(self, target: str, name: str, kind: str,
               attributes: dict[str, Any]) -> Iterator[None]:
        self.net.add_toxic(target, name, kind, attributes)
        try:
            yield
        finally:
            self.net.remove_toxic(target, name)

    def latency(self, target: str, ms: int,
                jitter_ms: int = 0) -> AbstractContextManager[None]:
        return self._toxic(target, "latency", "latency", {"latency": ms, "jitter": jitter_ms})

    def timeout(self, target: str, ms: int = 0) -> AbstractContextManager[None]:
        """Data stops flowing; with ms=0 connections hang until the client gives up."""
        return self._toxic(target, "timeout", "timeout", {"timeout": ms})

    def reset_peer(self, target: str, after_ms: int = 0) -> AbstractContextManager[None]:
        return self._toxic(target, "reset", "reset_peer", {"timeout": after_ms})

    @contextmanager
    def partition(self, target: str) -> Iterator[None]:
        """No route: the proxy stops listening, connections are refused."""
        self.net.set_enabled(target, False)
        try:
            yield
        finally:
            self.net.set_enabled(target, True)

    def reset(self) -> None:
        """Every toxic removed, every proxy enabled."""
        self.net.reset()
