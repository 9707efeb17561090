import time

import pytest

from harness.wait import Hopeless, WaitTimeout, eventually, wait_records


def test_returns_the_first_passing_value_and_records_the_wait():
    wait_records(clear=True)
    calls = iter([None, False, AssertionError("not yet"), "done"])

    def check():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    assert eventually(check, timeout=5, interval=0.01, description="thing") == "done"
    [rec] = wait_records(clear=True)
    assert rec.description == "thing" and rec.outcome == "passed"


def test_hopeless_fails_at_once():
    def check():
        raise Hopeless("ExternalSecret reports SecretSyncedError")

    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"gave up.*SecretSyncedError"):
        eventually(check, timeout=30, interval=0.01, description="sync")
    assert time.monotonic() - t0 < 1
    assert wait_records(clear=True)[-1].outcome == "hopeless"


def test_timeout_names_what_was_awaited_and_the_last_outcome():
    def check():
        raise AssertionError("phase is Pending")

    with pytest.raises(WaitTimeout, match=r"pod Running: not true within 0.3s .*Pending"):
        eventually(check, timeout=0.3, interval=0.05, description="pod Running")


def test_timeout_message_is_redacted():
    def check():
        raise AssertionError("got token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")

    with pytest.raises(WaitTimeout) as exc:
        eventually(check, timeout=0.1, interval=0.05)
    assert "eyJhbGciOi" not in str(exc.value)


def test_consistently_holds_or_reports_when_it_broke():
    from harness.wait import consistently

    consistently(lambda: True, duration=0.2, interval=0.05)
    t0 = time.monotonic()
    values = iter([True, True, False])
    with pytest.raises(WaitTimeout, match="stopped holding"):
        consistently(lambda: next(values), duration=10, interval=0.01, description="x")
    assert time.monotonic() - t0 < 1
