"""Teardown that a second Ctrl-C cannot cut short."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """SIGINT/SIGTERM are noted, not acted on, for the block (a teardown after the first
    Ctrl-C: a terminal sends it to the whole process group, `timeout` forwards another).
    Yields the signals that arrived. Outside the main thread, a no-op."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        arrived.append(signum)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield arrived
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
