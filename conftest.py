"""In-repo runs: the plugin is registered through the pytest11 entry point of the
installed package (`pip install -e .`). What is here is how this repository's own suite
runs under pytest-xdist (`pytest -n 4`; see the README):

- **Grouping.** Each test file is one group kept on one worker, so a module's fixtures (a
  bootstrapped app-of-apps, a store, an environment of its own) are built once; the
  staging package is two groups, each with one staging environment; the suites that
  start a real node (`real_node`: pods and kind backends) are one group, run one after
  another. Every worker brings up its own dev platform for the tests that use `platform`.
- **The redaction sweep covers every worker.** `test_zz_redaction_sweep` runs on one
  worker and sees only that worker's files and secret values; so each worker hands the
  controller the secret values it registered (over xdist's channel, never to disk), and
  the controller sweeps every worker's logs and state records once all have finished. A
  leak fails the session, naming the file and three characters of the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SECRETS_KEY = "heracles_secret_values"
STAGING = Path(__file__).parent / "scenarios" / "staging"


# Modules that start a real node (pytest.mark.real_node): one group, so they run one after
# another on one worker — they were never meant to share the host. The controller sees only
# node ids, so the list is written here; tests/test_xdist_groups.py keeps it equal to the
# modules carrying the marker.
REAL_NODE_FILES = frozenset({
    "scenarios/test_drills_pods.py", "scenarios/test_kind_backend.py",
    "scenarios/test_node_basics.py", "scenarios/test_pods_backend.py"})
# The staging package's suites share a package-scoped staging environment: backup/restore
# (the longest) gets one of its own, the others share another.
STAGING_SPLIT = frozenset({"scenarios/staging/test_backup_restore.py"})


def xdist_group(nodeid: str) -> str:
    """The group a test runs in: its file, except the two shared groups above."""
    path = nodeid.split("::")[0]
    if path in REAL_NODE_FILES:
        return "real_node"
    if path.startswith("scenarios/staging/") and path not in STAGING_SPLIT:
        return "scenarios/staging"
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Load scheduling by `xdist_group` (pytest-xdist 3.8's own `loadgroup` renames node
    ids through `item._nodeid`, which pytest 9.2 no longer reads: its groups are lost)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On xdist workers: the longest groups first (the scheduler hands groups out in
    collection order), so they do not start last."""
    if not hasattr(config, "workerinput"):
        return
    first = {"real_node": 0, "scenarios/staging": 1, **{f: 1 for f in STAGING_SPLIT}}
    items.sort(key=lambda i: first.get(xdist_group(i.nodeid), 2))  # stable


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_collected] = []


_collected = pytest.StashKey[list[str]]()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller: a worker finished; keep the secret values it registered."""
    values = getattr(node, "workeroutput", {}).get(SECRETS_KEY, [])
    node.config.stash[_collected].extend(values)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its values go to the controller
        from harness.runtime.redact import REDACTOR

        workeroutput[SECRETS_KEY] = [v for v in REDACTOR.values() if len(v) >= 8]
        return
    if not getattr(config.option, "numprocesses", None):
        return  # one process: test_zz_redaction_sweep saw everything
    leaks = sweep_workers(config)
    if leaks:
        config.get_terminal_writer().line(
            f"redaction sweep (every worker): secret values found in harness files: {leaks}",
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def sweep_workers(config: pytest.Config) -> list[tuple[str, str]]:
    """Every worker's harness files (under this session's base temp directory) against
    every value any worker registered, the seeded values and every root token."""
    from harness.resources import package_path
    from scenarios.helpers import file_texts, harness_files, secret_leaks, seeded_values

    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    seeded = seeded_values(package_path("fixtures"))
    tokens = [t.read_text().strip() for t in base.rglob("root-token") if t.is_file()]
    registered = [v for v in config.stash[_collected] if len(v) >= 8]
    return secret_leaks(file_texts(harness_files(base)), [*seeded, *tokens, *registered])

