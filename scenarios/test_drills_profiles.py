"""A drill listed for a profile passes on that profile — here every drill `harness drill
list` offers for dev, on one dev environment (issue 13: eso-outage waited for an ESO
leader, but dev runs one ESO replica without leader election, so it failed every time).
The HA drills on staging are in scenarios/staging/."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.drills import DRILLS
from harness.drills.runner import run_drill_session
from harness.testing import EnvironmentFactory, LocalEnvironment

pytestmark = pytest.mark.slow

DEV_DRILLS = [d.name for d in DRILLS.values() if "dev" in d.profiles]


@pytest.fixture(scope="module")
def dev(environment_factory: EnvironmentFactory) -> Iterator[LocalEnvironment]:
    """The whole dev profile (Prometheus included: eso-outage checks it sees ESO down)."""
    with environment_factory.environment("drills-dev", profile="dev") as env:
        yield env


def test_eso_outage_passes_on_dev_from_the_command_line(dev: LocalEnvironment,
                                                        tmp_path: Path) -> None:
    """`harness drill run eso-outage --profile dev` on the running dev environment: no
    leader to wait for; the restarted replica is ready and syncing, then force-sync."""
    assert not any("--enable-leader-election=true" in p.spec.argv
                   for p in dev.eso_operator.processes())
    res = subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir",
                          str(dev.settings.state_dir), "drill", "run", "eso-outage",
                          "--profile", "dev", "--report", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "on the running dev environment" in res.stderr
    assert "PASS" in res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "PASS", report["reasons"]
    assert report["profile"] == "dev"
    checks = {e["message"]: e["ok"] for e in report["events"] if e["kind"] == "check"}
    syncing = [m for m in checks if m.startswith("the restarted ESO is ready and syncing")]
    assert syncing and checks[syncing[0]] is True
    assert all(v is True for v in checks.values()), checks
    assert "leader_after_restart" not in report["measurements"]
    assert "syncing_after_restart" in report["measurements"]


@pytest.mark.parametrize("name", DEV_DRILLS)
def test_every_drill_listed_for_dev_passes_on_dev(dev: LocalEnvironment, name: str,
                                                  tmp_path: Path) -> None:
    outcome = run_drill_session(name, dev.settings, profile="dev", report_dir=tmp_path)
    assert outcome.plan.reuse  # on this module's environment, not one of its own
    assert outcome.result.profile == "dev"
    assert outcome.result.verdict == "PASS", outcome.result.reasons
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "PASS"
