"""In-repo runs: the plugin is registered through the pytest11 entry point of the
installed package (`pip install -e .`). What is here is how this repository's own suite
runs under pytest-xdist (`-n 4` is in pyproject's addopts; `-n 0` runs one process):

- **Grouping.** Each test file is one group kept on one worker, so a module's fixtures (a
  bootstrapped app-of-apps, a store, an environment of its own) are built once; the
  staging package is two groups, each with one staging environment; the suites that
  start a real node (`real_node`: pods and kind backends) are one group. Every worker
  brings up its own dev platform for the tests that use `platform`.
- **Order.** Longest group first (their seconds from the last run, or GROUP_SECONDS);
  the real-node group last and alone: every other worker has stopped, platform and all,
  before it starts, so its RTO objectives are measured on a quiet machine.
- **The redaction sweep covers every worker.** `test_zz_redaction_sweep` runs on one
  worker and sees only that worker's files and secret values; so each worker hands the
  controller the secret values it registered (over xdist's channel, never to disk), and
  the controller sweeps every worker's logs and state records once all have finished. A
  leak fails the session, naming the file and three characters of the value.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

SECRETS_KEY = "heracles_secret_values"

# Bytecode is written for this suite even where PYTHONDONTWRITEBYTECODE is set (CI
# images set it): every xdist worker and nested pytest rewrote the assertions of ~300
# modules from source (7.7 CPU-s per collection against 3.2 with the cache), and each of
# the ~100 `python -m harness.cli` the tests start compiled the harness again. The
# workers and subprocesses inherit the cleared variable; __pycache__ is git-ignored.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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


# Seconds of the slow groups (tests' setup, call and teardown; a 4-worker run here): the
# order of the first run on a clone (later runs order by what .pytest_cache recorded of
# the last one). A group not listed counts as short.
GROUP_SECONDS: dict[str, float] = {
    "scenarios/test_database.py": 300,
    "scenarios/staging": 233,
    "scenarios/test_lifecycle.py": 223,
    "scenarios/test_drills_existing.py": 211,
    "scenarios/staging/test_backup_restore.py": 184,
    "scenarios/test_drills_profiles.py": 153,
    "scenarios/test_gitops.py": 137,
    "scenarios/test_wheel_install.py": 119,
    "scenarios/test_existing_backend.py": 116,
    "scenarios/test_alerts.py": 114,
    "scenarios/test_bootstrap_errors.py": 109,
    "scenarios/test_cluster_seed.py": 93,
    "scenarios/test_crash_recovery.py": 88,
    "scenarios/test_refresh_timing.py": 80,
    "scenarios/test_apply.py": 79,
    "harness/testing/suites/test_platform_repo.py": 79,
    "tests/test_images.py": 67,
    "scenarios/test_customer_vault.py": 61,
    "scenarios/test_diagnostics.py": 52,
    "scenarios/test_runbook_local.py": 51,
    "scenarios/test_down_up.py": 51,
    "tests/test_toolchain.py": 42,
    "tests/test_cli.py": 40,
    "scenarios/test_network_faults.py": 26,
    "tests/test_bad_input.py": 24,
    "tests/test_kind_backend.py": 24,
    "scenarios/test_secret_failures.py": 22,
    "tests/test_apply_errors.py": 20,
}
# Groups with a test that uses the session's `platform` (a dev environment each worker
# starts when it first needs one). They are worker gw0's first choice and the other
# workers' last: their ~480 s fit one worker, while a platform per worker cost three more
# starts and ~90 CPU-s of environments at rest in a CPU-bound run (docs/suite-time.md).
# tests/test_xdist_groups.py keeps the list equal to what collection finds.
PLATFORM_GROUPS = frozenset({
    "harness/testing/suites/test_platform_repo.py", "scenarios/test_alerts.py",
    "scenarios/test_alerts_in_cluster.py", "scenarios/test_apply.py",
    "scenarios/test_cluster_seed.py", "scenarios/test_control_plane.py",
    "scenarios/test_diagnostics.py", "scenarios/test_existing_backend.py",
    "scenarios/test_gitops_in_cluster.py", "scenarios/test_network_faults.py",
    "scenarios/test_pod_faults.py", "scenarios/test_refresh_timing.py",
    "scenarios/test_rotation.py", "scenarios/test_runbook.py",
    "scenarios/test_runbook_local.py", "scenarios/test_secret_failures.py",
    "scenarios/test_secret_sync.py", "scenarios/test_zz_redaction_sweep.py"})
PLATFORM_WORKER = "gw0"
# Groups that run with no other group beside them, after all the others: the real-node
# suites missed their own deadlines (a pods restore RTO of 43 s against 30 s) next to
# three workers, each with a platform of its own, on two cores.
ALONE = frozenset({"real_node"})
DURATIONS_KEY = "heracles/group-seconds"


def group_seconds(config: pytest.Config) -> dict[str, float]:
    """What each group took in the last run that ran it (committed figures first)."""
    cache = getattr(config, "cache", None)
    recorded = cache.get(DURATIONS_KEY, {}) if cache is not None else {}
    return {**GROUP_SECONDS, **recorded}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Load scheduling by `xdist_group`, longest group first, the ALONE groups last and
    by themselves. (pytest-xdist 3.8's own `loadgroup` renames node ids through
    `item._nodeid`, which pytest 9.2 no longer reads: its groups are lost; and its
    `loadscope` orders groups by their number of tests, which puts a module of three
    90-second tests behind every file of fast unit tests.)"""
    from xdist.scheduler import LoadScopeScheduling

    seconds = group_seconds(config)

    def priority(scope: str) -> tuple[bool, float]:
        return scope in ALONE, -seconds.get(scope, 0.0)

    def for_node(node: Any) -> Callable[[str], tuple[bool, bool, float]]:
        """`priority` as `node` sees it: the platform worker takes the PLATFORM_GROUPS
        first, every other worker takes them last."""
        platform_worker = getattr(node.gateway, "id", None) == PLATFORM_WORKER

        def key(scope: str) -> tuple[bool, bool, float]:
            alone, length = priority(scope)
            return alone, (scope in PLATFORM_GROUPS) != platform_worker, length
        return key

    class GroupScheduling(LoadScopeScheduling):
        """A worker keeps its last test until it gets more or is told to stop (the test
        needs its successor to run), so the ALONE groups go to the last worker left
        once every other one has been stopped and has reported its last test."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

        def _alone_next(self) -> bool:
            return bool(self.workqueue) and min(self.workqueue, key=priority) in ALONE

        def _assign_work_unit(self, node: Any) -> None:
            for scope in sorted(self.workqueue, key=for_node(node)):
                self.workqueue.move_to_end(scope)
            if self._alone_next() and (node.shutting_down or any(
                    not other.shutting_down or self._pending_of(work)
                    for other, work in self.assigned_work.items() if other is not node)):
                return
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            if node.shutting_down or not self._alone_next():
                super()._reschedule(node)
            elif self._pending_of(self.assigned_work[node]) <= 1:
                if any(not n.shutting_down for n in self.nodes if n is not node):
                    node.shutdown()  # one of the others runs the ALONE groups
                else:
                    self._assign_work_unit(node)

        def mark_test_complete(self, node: Any, item_index: int,
                               duration: float = 0) -> None:
            super().mark_test_complete(node, item_index, duration)
            live = [n for n in self.nodes if not n.shutting_down]
            if self._alone_next() and len(live) == 1:
                self._assign_work_unit(live[0])

    return GroupScheduling(config, log)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_collected] = []
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(GroupClock(config), "heracles-group-clock")


_collected = pytest.StashKey[list[str]]()


class GroupClock:
    """Controller (or the one process): each group's seconds, its fixtures' setup and
    teardown included, kept in .pytest_cache for the next run's order."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: dict[str, float] = {}
        self.partial: set[str] = set()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """A group run in part (-k, -m) says nothing of its length."""
        self.partial.update(xdist_group(i.nodeid) for i in items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        group = xdist_group(report.nodeid)
        self.seconds[group] = self.seconds.get(group, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is None or exitstatus not in (pytest.ExitCode.OK,
                                               pytest.ExitCode.TESTS_FAILED):
            return
        kept = {g: round(s, 1) for g, s in self.seconds.items() if g not in self.partial}
        cache.set(DURATIONS_KEY, {**cache.get(DURATIONS_KEY, {}), **kept})


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

