"""The session-end sweep that covers every pytest-xdist worker (conftest.py): a value a
worker registered, written to any worker's log, is found; a value inside a longer name is
not a leak; the hint never holds the value."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import conftest
from scenarios.helpers import secret_leaks


@pytest.fixture
def base() -> Iterator[Path]:
    """Outside pytest's base temp directory: the session's own sweep would find the leaks
    these tests plant."""
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        yield Path(tmp)


def _config(base, values):
    config = SimpleNamespace(_tmp_path_factory=SimpleNamespace(getbasetemp=lambda: base),
                             stash={conftest._collected: list(values)})
    return config


def test_a_value_one_worker_registered_is_found_in_another_workers_log(base) -> None:
    secret = "rotated-Zq8vT3kLmN"
    logs = base / "popen-gw1" / "heracles-state0" / "logs"
    logs.mkdir(parents=True)
    (logs / "external-secrets.log").write_text(f"synced value={secret} ok\n")
    (logs / "vault.log").write_text("nothing here\n")
    leaks = conftest.sweep_workers(_config(base, [secret]))
    assert [(name.rsplit("/", 1)[-1], hint) for name, hint in leaks] == [
        ("external-secrets.log", "rot...")]
    assert secret not in str(leaks)


def test_root_tokens_in_state_dirs_are_swept_for_too(base) -> None:
    state = base / "popen-gw0" / "heracles-state0"
    (state / "vault").mkdir(parents=True)
    (state / "vault" / "root-token").write_text("hvs.TOKENVALUE123\n")
    (state / "logs").mkdir()
    (state / "logs" / "git-server.log").write_text("auth hvs.TOKENVALUE123\n")
    assert len(conftest.sweep_workers(_config(base, []))) == 1


@pytest.mark.parametrize(("text", "found"), [
    ("password=harbor-secret;", True),
    ("namespace t-test-harbor-secrets-are-synced", False),
])
def test_a_value_counts_only_as_a_token_of_its_own(text: str, found: bool) -> None:
    assert bool(secret_leaks({"f": text}, ["harbor-secret"])) is found
