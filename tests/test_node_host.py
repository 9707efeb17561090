"""A node's host changes against the real kernel: the run's cgroup tree (with a process
in it) and the kubelet's sysctls, undone by the right reaper and only by it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.runtime import node_host
from harness.runtime.registry import RunRegistry

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not node_host.hierarchies(),
                                reason="cgroups and sysctls need root")

PANIC = Path("/proc/sys/kernel/panic")


def test_a_registry_reaps_its_own_dead_node_and_never_another_registrys(
        tmp_path: Path) -> None:
    mine, other = RunRegistry(tmp_path / "mine"), RunRegistry(tmp_path / "other")
    run_id = "test-node-host-" + os.urandom(3).hex()
    node_host.acquire_sysctls(Path(mine.root), run_id)
    node_host.create_cgroups(run_id)
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        for procs in Path("/sys/fs/cgroup").glob(f"*/heracles-{run_id}/system/cgroup.procs"):
            procs.write_text(str(sleeper.pid))
        assert sleeper.pid in node_host.cgroup_pids(run_id)

        other.reap()  # not its run: untouched
        assert sleeper.poll() is None and node_host.cgroup_dirs(run_id)

        assert run_id in mine.reap()  # its claim, no registration: a dead run
        assert sleeper.wait(timeout=10) is not None
        assert node_host.cgroup_dirs(run_id) == []
        assert run_id not in node_host.sysctl_runs()
    finally:
        sleeper.kill()
        node_host.release_host(run_id)


def test_sysctls_are_restored_by_the_last_node_only(tmp_path: Path) -> None:
    if node_host.sysctl_runs():
        pytest.skip("another node of this machine holds the sysctls right now")
    original = PANIC.read_text().strip()
    first, second = "test-sysctl-a-" + os.urandom(2).hex(), "test-sysctl-b-" + os.urandom(2).hex()
    try:
        node_host.acquire_sysctls(tmp_path, first)
        PANIC.write_text("10")  # what the kubelet does
        node_host.acquire_sysctls(tmp_path, second)  # records nothing new: not the first
        assert node_host.release_sysctls(first) == {}
        assert PANIC.read_text().strip() == "10"  # the second node still runs
        restored = node_host.release_sysctls(second)
        assert PANIC.read_text().strip() == original
        assert restored.get("kernel/panic") == original or original == "10"
        assert not node_host.CLAIMS.exists()
    finally:
        node_host.release_sysctls(first)
        node_host.release_sysctls(second)
        PANIC.write_text(original)
