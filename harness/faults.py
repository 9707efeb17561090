"""Fault primitives for scenarios and drills. Each is a context manager that undoes
itself on exit (and the `faults` fixture undoes whatever is left at teardown), so a
failed test never leaves the platform broken for the next one.

Process faults act on a named process of the environment (kill -9, graceful stop,
SIGSTOP/SIGCONT, restart, wipe of its data dir); network faults use Toxiproxy in front
of a component's in-cluster address (latency, timeout, connection reset, partition).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.components.netfault import NetFault


class Faults:
    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self._undo: list[tuple[str, Any]] = []

    # ---- processes ---------------------------------------------------------------------
    def kill(self, process: str) -> None:
        """kill -9: no chance to clean up, as a crash or an OOM kill."""
        self.platform.process(process).kill()

    def stop(self, process: str) -> None:
        self.platform.process(process).stop()

    def start(self, process: str) -> None:
        self.platform.start_process(process)

    def restart(self, process: str) -> None:
        self.platform.restart_process(process)

    @contextmanager
    def paused(self, process: str) -> Iterator[None]:
        """SIGSTOP for the duration: the process holds its ports and answers nothing."""
        proc = self.platform.process(process)
        proc.pause()
        try:
            yield
        finally:
            proc.resume()

    def wipe_data(self, process: str) -> None:
        """Delete a (stopped) process's data directory: disk loss."""
        self.platform.process(process).wipe_data()

    # ---- network (Toxiproxy) -----------------------------------------------------------
    @property
    def net(self) -> NetFault:
        comp = self.platform.component("netfault")
        assert isinstance(comp, NetFault)
        return comp

    @contextmanager
    def _toxic(self, target: str, name: str, kind: str, attributes: dict) -> Iterator[None]:
        self.net.add_toxic(target, name, kind, attributes)
        try:
            yield
        finally:
            self.net.remove_toxic(target, name)

    def latency(self, target: str, ms: int, jitter_ms: int = 0) -> Any:
        return self._toxic(target, "latency", "latency", {"latency": ms, "jitter": jitter_ms})

    def timeout(self, target: str, ms: int = 0) -> Any:
        """Data stops flowing; with ms=0 connections hang until the client gives up."""
        return self._toxic(target, "timeout", "timeout", {"timeout": ms})

    def reset_peer(self, target: str, after_ms: int = 0) -> Any:
        return self._toxic(target, "reset", "reset_peer", {"timeout": after_ms})

    @contextmanager
    def partition(self, target: str) -> Iterator[None]:
        """No route: the proxy stops listening, connections are refused."""
        self.net.set_enabled(target, False)
        try:
            yield
        finally:
            self.net.set_enabled(target, True)

    def undo_all(self) -> None:
        """Teardown: every network fault off, every paused process resumed."""
        if "netfault" in self.platform.components:
            self.net.reset()
        for comp in self.platform.components.values():
            for proc in comp.processes():
                if proc.running():
                    proc.resume()
