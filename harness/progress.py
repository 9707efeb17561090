"""Progress for long work: a live line on a terminal, timestamped lines elsewhere (CI logs).

On a terminal rich draws a spinner with the task, its current step and elapsed time.
Without one (CI), each step is printed once and a heartbeat line every
`heartbeat` seconds says what is still running, so a 20-minute Go build is never silent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


class Task:
    def __init__(self, reporter: Reporter, name: str) -> None:
        self.reporter = reporter
        self.name = name
        self.started = time.monotonic()
        self.step_text = "starting"
        self._task_id: TaskID | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, text: str) -> None:
        self.step_text = text
        self.reporter._on_step(self)


class Reporter:
    def __init__(self, console: Console | None = None, heartbeat: float = 60.0) -> None:
        self.console = console or Console(stderr=True)
        self.heartbeat = heartbeat
        self.live = self.console.is_terminal
        self._progress: Progress | None = None
        self._current: Task | None = None
        self._stop = threading.Event()

    @contextmanager
    def task(self, name: str) -> Iterator[Task]:
        task = Task(self, name)
        self._current = task
        if self.live:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.fields[name]}"),
                TextColumn("{task.description}"), TimeElapsedColumn(),
                console=self.console, transient=True,
            )
            self._progress.start()
            task._task_id = self._progress.add_task("starting", name=name)
            yield task
            self._progress.stop()
            self._progress = None
            return
        self._stop.clear()
        beat = threading.Thread(target=self._beat, args=(task,), daemon=True)
        beat.start()
        try:
            yield task
        finally:
            self._stop.set()
            beat.join()

    def _on_step(self, task: Task) -> None:
        if self._progress is not None and task._task_id is not None:
            self._progress.update(task._task_id, description=task.step_text)
        else:
            self.console.print(f"[{fmt_seconds(task.elapsed):>7}] {task.name}: {task.step_text}",
                               highlight=False)

    def _beat(self, task: Task) -> None:
        while not self._stop.wait(self.heartbeat):
            self.console.print(
                f"[{fmt_seconds(task.elapsed):>7}] {task.name}: still running: {task.step_text}",
                highlight=False,
            )

    def print(self, *args: object, **kwargs: object) -> None:
        self.console.print(*args, **kwargs)  # type: ignore[arg-type]
