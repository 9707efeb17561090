"""Process faults on the local backend: kill -9, graceful stop, SIGSTOP/SIGCONT, restart,
wipe of a data directory. Each acts on a named process of the environment, through the
environment, so the state file follows every pid."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

from harness.runtime.process import ManagedProcess


class ProcessHost(Protocol):
    """What process faults need of an environment (the local backend's)."""

    def process(self, name: str) -> ManagedProcess: ...

    def start_process(self, name: str) -> ManagedProcess: ...

    def restart_process(self, name: str) -> ManagedProcess: ...

    def all_processes(self) -> Iterable[ManagedProcess]: ...


class ProcessFaults:
    def __init__(self, env: ProcessHost) -> None:
        self.env = env

    def kill(self, process: str) -> None:
        """kill -9: no chance to clean up, as a crash or an OOM kill."""
        self.env.process(process).kill()

    def stop(self, process: str) -> None:
        self.env.process(process).stop()

    def start(self, process: str) -> None:
        self.env.start_process(process)

    def restart(self, process: str) -> None:
        self.env.restart_process(process)

    @contextmanager
    def paused(self, process: str) -> Iterator[None]:
        """SIGSTOP for the duration: the process holds its ports and answers nothing."""
        proc = self.env.process(process)
        proc.pause()
        try:
            yield
        finally:
            proc.resume()

    def wipe_data(self, process: str) -> None:
        """Delete a (stopped) process's data directory: disk loss."""
        self.env.process(process).wipe_data()

    def resume_all(self) -> None:
        """Every paused process of the environment resumed."""
        for proc in self.env.all_processes():
            if proc.running():
                proc.resume()
