"""eventually(): poll a check until it passes, with a deadline — never a bare sleep.

A check returns a value or raises. It passes when it returns something other than None
or False; that value is returned. AssertionError and other exceptions mean "not yet".
`Hopeless` means "this will never pass" (an ExternalSecret reports a terminal error, a
process exited): the wait fails at once instead of burning its timeout. Every wait is
recorded with how long it took, so slow paths show up in reports and `harness bench`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from harness.runtime.redact import redact

T = TypeVar("T")


class Hopeless(Exception):
    """Raised by a check when waiting longer cannot help."""


class WaitTimeout(AssertionError):
    """The deadline passed; the message says what was awaited and the last outcome."""


@dataclass(frozen=True)
class WaitRecord:
    description: str
    seconds: float
    outcome: str  # passed | timeout | hopeless


_records: list[WaitRecord] = []
_lock = threading.Lock()


def wait_records(clear: bool = False) -> list[WaitRecord]:
    with _lock:
        out = list(_records)
        if clear:
            _records.clear()
    return out


def record_wait(desc: str, seconds: float, outcome: str) -> None:
    """One wait's outcome (eventually(), consistently(), a watch) for the reports."""
    with _lock:
        _records.append(WaitRecord(desc, seconds, outcome))


def _not_passed(value: object) -> bool:
    return value is None or value is False


def eventually(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2,
               description: str | None = None,
               error: type[Exception] = WaitTimeout,
               retry_on: tuple[type[Exception], ...] = (Exception,)) -> T:
    """Call `check` until it passes or `timeout` seconds pass; returns its value.

    On a time-out (or a Hopeless check) it raises `error` — WaitTimeout, an
    AssertionError, for tests; library code passes HarnessError so a command prints one
    line — always with the same message shape: what was awaited, for how long, and the
    check's last outcome. `retry_on` narrows which exceptions mean "not yet": any
    other propagates at once, as it is (Ctrl-C always does)."""
    desc: str = description or str(getattr(check, "__name__", "check"))
    started = time.monotonic()
    last: list[str] = ["never ran"]

    def remember(value: object) -> bool:
        if _not_passed(value):
            last[0] = f"returned {value!r}"
            return True
        return False

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, Hopeless) or not isinstance(exc, retry_on):
            return False
        last[0] = f"{type(exc).__name__}: {exc}"
        return True

    retrying = Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(interval),
        retry=retry_if_exception(retryable) | retry_if_result(remember),
        reraise=False,
    )
    try:
        value = retrying(check)
    except Hopeless as exc:
        elapsed = time.monotonic() - started
        record_wait(desc, elapsed, "hopeless")
        raise error(redact(f"{desc}: gave up after {elapsed:.1f}s: {exc}")) from None
    except RetryError:
        elapsed = time.monotonic() - started
        record_wait(desc, elapsed, "timeout")
        raise error(redact(
            f"{desc}: not true within {timeout:.1f}s (last: {last[0]})")) from None
    record_wait(desc, time.monotonic() - started, "passed")
    assert value is not None  # retry_if_result kept polling while it was None
    return value


def consistently(check: Callable[[], object], duration: float, interval: float = 0.2,
                 description: str | None = None,
                 error: type[Exception] = WaitTimeout) -> None:
    """`check` must pass (not raise, not return None/False) at every poll for `duration`
    seconds — the negative twin of eventually(): "the change does NOT arrive"."""
    desc = description or getattr(check, "__name__", "check")
    started = time.monotonic()
    while True:
        try:
            value = check()
        except AssertionError as exc:
            record_wait(str(desc), time.monotonic() - started, "broken")
            raise error(redact(f"{desc}: stopped holding after "
                                     f"{time.monotonic() - started:.1f}s: {exc}")) from None
        if _not_passed(value):
            record_wait(str(desc), time.monotonic() - started, "broken")
            raise error(redact(f"{desc}: stopped holding after "
                                     f"{time.monotonic() - started:.1f}s (returned {value!r})"))
        if time.monotonic() - started >= duration:
            record_wait(str(desc), time.monotonic() - started, "held")
            return
        time.sleep(interval)
