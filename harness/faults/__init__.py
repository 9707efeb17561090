"""Faults, one module per kind: process (kill/stop/pause/restart/wipe on the local
backend), network (Toxiproxy in front of Vault) and kube (Kubernetes operations where the
platform runs as pods: delete a Vault pod, scale ESO). Each fault undoes itself on exit,
and the `faults` fixture undoes whatever is left at teardown, so a failed test never
leaves the platform broken for the next one.

`LocalFaults` is what the local backend hands to tests: process and network faults on
one object (`faults.kill("vault-0")`, `with faults.latency("vault", 500): ...`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from harness.errors import HarnessError
from harness.faults.network import NetworkFaults, ToxicProxy
from harness.faults.process import ProcessFaults, ProcessHost


class LocalFaults(ProcessFaults):
    """Process faults, plus network faults when the environment runs Toxiproxy."""

    def __init__(self, env: ProcessHost, proxy: ToxicProxy | None = None) -> None:
        super().__init__(env)
        self._net = NetworkFaults(proxy) if proxy is not None else None

    @property
    def network(self) -> NetworkFaults:
        if self._net is None:
            raise HarnessError("network faults need the netfault component (Toxiproxy): "
                               "this environment runs without it")
        return self._net

    def latency(self, target: str, ms: int,
                jitter_ms: int = 0) -> AbstractContextManager[None]:
        return self.network.latency(target, ms, jitter_ms)

    def timeout(self, target: str, ms: int = 0) -> AbstractContextManager[None]:
        return self.network.timeout(target, ms)

    def reset_peer(self, target: str, after_ms: int = 0) -> AbstractContextManager[None]:
        return self.network.reset_peer(target, after_ms)

    def partition(self, target: str) -> AbstractContextManager[None]:
        return self.network.partition(target)

    def undo_all(self) -> None:
        """Teardown: every network fault off, every paused process resumed."""
        if self._net is not None:
            self._net.reset()
        self.resume_all()


__all__ = ["LocalFaults", "NetworkFaults", "ProcessFaults", "ProcessHost",
           "ToxicProxy"]
