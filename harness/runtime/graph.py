"""Run steps along their dependencies: a step starts once every step it waits for has
ended well, and steps with nothing left to wait for run at the same time (one thread
each). Components start this way, and so do the processes of a component."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from harness.errors import HarnessError


class NotStarted(HarnessError):
    """A step was not run because another step failed first."""


def run_graph(order: Iterable[str], deps: Mapping[str, Iterable[str]],
              action: Callable[[str], None]) -> None:
    """`action(name)` for every name of `order`, each after its `deps` (names listed
    before it). Once a step fails no new step begins; the steps under way are awaited,
    then the first failure in `order` is raised (a step that was not run raises
    NotStarted, and is not that first failure unless nothing else failed)."""
    names = list(order)
    waits = {n: tuple(deps.get(n, ())) for n in names}
    for i, name in enumerate(names):
        unknown = [d for d in waits[name] if d not in names[:i]]
        if unknown:
            raise HarnessError(f"{name} waits for {', '.join(unknown)}, which is not "
                               "listed before it")
    failed = threading.Event()
    futures: dict[str, Future[None]] = {}

    def step(name: str) -> None:
        try:
            for dep in waits[name]:
                futures[dep].result()
            if failed.is_set():
                raise NotStarted(f"{name}: not started (an earlier step failed)")
            action(name)
        except BaseException:
            failed.set()
            raise

    if not names:
        return
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="step") as pool:
        try:
            for name in names:  # a step's dependencies are submitted before it
                futures[name] = pool.submit(step, name)
            for name in names:
                futures[name].exception()  # wait for all (Ctrl-C lands here)
        except BaseException:
            failed.set()
            raise
    errors = [e for n in names if (e := futures[n].exception()) is not None]
    real = [e for e in errors if not isinstance(e, NotStarted)]
    if real or errors:
        raise (real or errors)[0]
