"""Process faults on the local backend: kill -9, graceful stop, SIGSTOP/SIGCONT, restart,
wipe of a data directory. Each acts on a named process of the environment, through the
environment, so the state file follows every pid."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment


class ProcessFaults:
    def __init__(self, env: LocalEnvironment) -> None:
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
        for comp in self.env.components.values():
            for proc in comp.processes():
                if proc.running():
                    proc.resume()
