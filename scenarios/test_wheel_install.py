"""The harness as a team installs it: the built wheel in a fresh virtualenv, with no
checkout on sys.path, running the example team repository (examples/team-repo: its own
pyproject.toml and tests using the fixtures, and the shipped generic suites over it)
against an environment `harness up` started from that wheel — `tox -e wheel`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.scenario]


def test_the_wheel_runs_the_example_team_repo_against_a_running_environment(
        tmp_path: Path) -> None:
    junit = tmp_path / "team.xml"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HERACLES_STATE_DIR", "PYTEST_", "VIRTUAL_ENV"))}
    env["HERACLES_REGISTRY_DIR"] = str(tmp_path / "registry")
    # short: the environment's state directory (inside tox's work dir) holds unix sockets
    work = Path(tempfile.mkdtemp(prefix="hw-", dir="/tmp"))
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("tox")), "-e", "wheel", "--workdir",
             str(work), "--", f"--junitxml={junit}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        check(proc, junit, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(proc: subprocess.CompletedProcess[str], junit: Path, work: Path) -> None:
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None, tail
    cases = {c.get("name", ""): c for c in suite.iter("testcase")}
    # the team's own tests ran, from its tests/ directory, and passed
    own = {"test_orders_db_follows_a_rotation_in_vault",
           "test_the_session_uses_the_settings_from_pyproject"}
    assert own <= set(cases), sorted(cases)
    # the shipped suites ran over the team's repository, from the installed package
    shipped = [c for c in suite.iter("testcase") if "team-repo:" in c.get("name", "")]
    assert {n.get("name", "").split("[")[0] for n in shipped} >= {
        "test_every_external_secret_syncs", "test_every_application_reaches_synced",
        "test_every_prometheus_rule_watches_metrics_that_exist"}, sorted(cases)
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail
    ran = [cases[n] for n in own] + shipped  # passed: no skip among them
    assert not [c.get("name") for c in ran if c.find("skipped") is not None], tail
    # what the wheel installed is what git tracks under harness/ (nothing stale from a
    # build directory), the package data included
    [site] = (work / "wheel").glob("lib/python3*/site-packages")
    tracked = set(subprocess.run(["git", "ls-files", "harness"], cwd=ROOT, text=True,
                                 capture_output=True, check=True).stdout.split())
    shipped_files = {str(f.relative_to(site)) for f in (site / "harness").rglob("*")
                     if f.is_file() and "__pycache__" not in f.parts}
    assert shipped_files <= tracked, sorted(shipped_files - tracked)
    assert "harness/fixtures/gitops/.heracles-expected.yaml" in shipped_files
    assert "harness/testing/suites/test_platform_repo.py" in shipped_files
    # and the environment the wheel's `harness up` started is gone again
    said = proc.stdout + proc.stderr  # progress lines go to stderr
    assert "harness down" in said and "etcd: stopped" in said, tail
