"""Drills through the existing backend, as CI runs them: a local dev environment (its
Vault has one-node raft storage) is described in an endpoints file (`harness backend
export-config`) and `harness drill run ... --backend existing --config FILE` runs
against it as against anyone's cluster — Vault's API with the token of the file, the
Kubernetes API of its kubeconfig — with JUnit XML and --json for CI. The fault drills
need `faults:` in the config (pod-faults): a local environment has no Vault Pods nor an
ESO Deployment, so they are refused here, naming the capability."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.existing import export_config
from harness.drills import run_drill
from harness.drills.probe import PREFIX
from harness.testing import EnvironmentFactory, LocalEnvironment
from harness.vault_config.seed import parse_seed

pytestmark = pytest.mark.scenario

COMPONENTS = ("etcd", "kube", "vault", "eso")


@pytest.fixture(scope="module")
def dev(environment_factory: EnvironmentFactory) -> Iterator[LocalEnvironment]:
    """A dev environment of its own: the snapshot restore rolls its Vault back."""
    with environment_factory.environment("drills-existing", profile="dev",
                                         components=COMPONENTS) as env:
        yield env


@pytest.fixture(scope="module")
def endpoints(dev: LocalEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_config(dev, tmp_path_factory.mktemp("existing") / "existing.yaml")


def harness(dev: LocalEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir",
                           str(dev.settings.state_dir), "drill", "run", *args],
                          capture_output=True, text=True, timeout=600)


def secrets_of(dev: LocalEnvironment) -> list[str]:
    """What must appear nowhere: the root token, the seeded values, the probe's values."""
    vault = dev.component("vault")
    seeded = [v for _m, _p, values in parse_seed(
        dev.settings.fixtures_dir / "vault" / "seed.txt")
        for k, v in values.items() if k != "username"]
    probe = [data["value"] for key in ("probe", "k00", "k09")
             if (data := vault.kv_get(f"{PREFIX}/{key}")) is not None]
    assert probe, "the drill's keys are there after the restore"
    return [vault.root_token(), *seeded, *probe]


def only_testcase(junit: Path) -> ET.Element:
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    assert len(cases) == 1
    return cases[0]


def test_vault_snapshot_restore_passes_through_the_existing_backend(
        dev: LocalEnvironment, endpoints: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    res = harness(dev, "vault-snapshot-restore", "--backend", "existing", "--config",
                  str(endpoints), "--yes-restore-vault", "--report", str(tmp_path / "rep"),
                  "--junit-xml", str(junit), "--json")
    assert res.returncode == 0, res.stderr
    assert "on the existing cluster of" in res.stderr and "PASS" in res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    assert doc["verdict"] == "PASS", doc["reasons"]
    assert doc["backend"] == "existing" and doc["drill"] == "vault-snapshot-restore"
    assert 0 < doc["rto_seconds"] <= doc["objectives"]["rto_seconds"]
    assert doc["rpo"]["lost"] == 6 and doc["rpo"]["unexpected_loss"] == 0
    assert doc["rpo"]["window_seconds"] > 0
    assert {"vault_serving_after_restore", "eso_resync"} <= set(doc["measurements"])
    print(f"\nvault-snapshot-restore through the existing backend: RTO "
          f"{doc['rto_seconds']} s, RPO {doc['rpo']}, {doc['measurements']}")
    assert set(doc["reports"]) >= {"json", "md", "html"}
    assert json.loads(Path(doc["reports"]["json"]).read_text())["verdict"] == "PASS"
    checks = [e for e in doc["events"] if e["kind"] == "check"]
    assert checks and all(e["ok"] for e in checks)

    case = only_testcase(junit)
    assert case.get("name") == "vault-snapshot-restore"
    assert case.find("failure") is None and case.find("error") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "PASS" and float(props["rto_seconds"] or "x") > 0
    assert props["rpo_lost"] == "6"

    written = [res.stdout, res.stderr, junit.read_text(),
               *(Path(p).read_text(errors="replace") for p in doc["reports"].values()
                 if not p.endswith(".png"))]
    leaked = [s[:3] + "..." for s in secrets_of(dev) if any(s in text for text in written)]
    assert leaked == [], f"secret values in the drill's output: {leaked}"


def test_objectives_of_the_config_decide_the_verdict(dev: LocalEnvironment,
                                                     endpoints: Path,
                                                     tmp_path: Path) -> None:
    """The config's `objectives:` sets the RTO objective: 1 s cannot be met (OpenBao
    applies a restored snapshot's setup ~5 s later) — FAIL, exit 1, a JUnit failure
    whose message is the reason."""
    cfg = yaml.safe_load(endpoints.read_text())
    cfg["objectives"] = {"vault-snapshot-restore": {"rto_seconds": 1}}
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(cfg))
    junit = tmp_path / "junit.xml"
    res = harness(dev, "vault-snapshot-restore", "--config", str(strict),
                  "--yes-restore-vault", "--report", str(tmp_path / "rep"), "--junit-xml",
                  str(junit))
    assert res.returncode == 1, res.stderr
    failure = only_testcase(junit).find("failure")
    assert failure is not None
    assert "exceeds the objective 1s" in (failure.get("message") or "")
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["objectives"]["rto_seconds"] == 1
    checks = [e for e in report["events"] if e["kind"] == "check"]
    assert all(e["ok"] for e in checks)  # the restore itself worked


@pytest.mark.parametrize("name,missing", [("vault-leader-loss", "pod-faults"),
                                          ("eso-outage", "pod-faults")])
def test_a_fault_drill_is_refused_naming_the_missing_capability(
        dev: LocalEnvironment, endpoints: Path, tmp_path: Path, name: str,
        missing: str) -> None:
    junit = tmp_path / "junit.xml"
    res = harness(dev, name, "--backend", "existing", "--config", str(endpoints),
                  "--junit-xml", str(junit), "--json")
    assert res.returncode == 2, res.stderr
    assert f"missing: {missing}" in res.stderr and "Traceback" not in res.stderr
    assert "turns faults into Kubernetes operations" in res.stderr
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "REFUSED" and missing in doc["reasons"][0]
    skipped = only_testcase(junit).find("skipped")
    assert skipped is not None and missing in (skipped.get("message") or "")


def test_drill_list_says_what_runs_on_this_cluster(dev: LocalEnvironment,
                                                   endpoints: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "harness.cli", "drill", "list", "--config",
                          str(endpoints), "--json"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["capabilities"] == ["eso-metrics"]  # exported: ESO's /metrics, no faults
    runnable = {d["name"] for d in doc["drills"] if d["runnable"]}
    assert runnable == {"vault-snapshot-restore"}


def test_the_same_drill_passes_on_the_local_backend(dev: LocalEnvironment,
                                                    tmp_path: Path) -> None:
    """The local version (no confirmation: the environment is the harness's own)."""
    result = run_drill("vault-snapshot-restore", dev, tmp_path)
    assert result.verdict == "PASS", result.reasons
    assert result.backend == "local" and result.profile == "dev"
    assert result.rpo["lost"] == 6
