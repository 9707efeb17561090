"""Drills on the existing backend, without a cluster: which drills run there and which
are refused (naming what they need and what the config lacks), the --yes-restore-vault
confirmation, objectives (the drill's, the config's, --rto), the JUnit XML and the
--json documents of `drill list` / `drill run`; the existing backend's leader-loss
drill against fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hvac
import pytest
import yaml

from harness.backends.base import CAPABILITIES
from harness.backends.existing import BackendError, ExistingConfig
from harness.drills import DRILLS, get, on_backend, refusal, run_drill
from harness.drills import existing as existing_drills
from harness.drills.junit import NotRun, write_junit
from harness.drills.model import DrillResult, DrillRun, Objectives
from harness.drills.runner import drill_catalog, objectives_for, plan_drill
from harness.errors import HarnessError
from harness.runtime.redact import REDACTOR
from harness.settings import Settings

FAULTS = {"vault_pods": {"namespace": "vault", "selector": "app.kubernetes.io/name=vault"},
          "eso_deployment": {"namespace": "external-secrets", "name": "external-secrets"}}


def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                    registry_dir=tmp_path / "registry")


def config(tmp_path: Path, name: str = "existing.yaml", **extra: Any) -> Path:
    """An endpoints file: Vault's address and a kubeconfig path (never connected to)."""
    doc = {"kubeconfig": str(tmp_path / "kubeconfig"),
           "vault": {"address": "http://127.0.0.1:1", "token_env": "NO_SUCH_TOKEN"},
           **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def harness(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERACLES_STATE_DIR": str(tmp_path / "state"),
           "HERACLES_REGISTRY_DIR": str(tmp_path / "registry"), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


# ---- the catalog ---------------------------------------------------------------------
def test_which_drills_have_a_version_for_the_existing_backend() -> None:
    assert on_backend("existing") == ["vault-leader-loss", "vault-snapshot-restore",
                                      "eso-outage"]
    assert on_backend("pods") == ["vault-leader-loss", "vault-restore", "eso-outage"]
    assert "vault-snapshot-restore" in on_backend("local")
    snap = get("vault-snapshot-restore", "existing")
    assert snap.needs == frozenset() and snap.confirm and "--yes-restore-vault" in \
        snap.description
    assert get("vault-snapshot-restore").confirm is None  # local: the harness's own
    assert get("eso-outage", "existing").needs == {"pod-faults", "eso-metrics"}
    for d in DRILLS.values():  # every need is a word of the capability vocabulary
        for b in d.backends:
            assert (d.needs_on(b) or frozenset()) <= set(CAPABILITIES), (d.name, b)


@pytest.mark.parametrize("name", ["vault-restore", "cluster-state-restore"])
def test_a_drill_without_an_existing_version_names_where_it_runs(name: str) -> None:
    why = refusal(name, "existing", frozenset(CAPABILITIES))
    assert why is not None
    assert why.startswith(f"drill {name!r} has no version for the existing backend; on "
                          "existing: vault-leader-loss, vault-snapshot-restore, eso-outage")
    assert "local: local-processes" in why
    with pytest.raises(HarnessError, match="has no version for the existing backend"):
        get(name, "existing")


def test_a_missing_capability_is_named_with_what_it_does() -> None:
    why = refusal("eso-outage", "existing", frozenset({"eso-metrics"}), "/x/e.yaml")
    assert why == ("drill 'eso-outage' on the existing backend of /x/e.yaml needs "
                   "eso-metrics, pod-faults; missing: pod-faults (the existing backend "
                   f"cannot run this: it {CAPABILITIES['pod-faults']})")
    assert refusal("eso-outage", "existing", frozenset({"eso-metrics", "pod-faults"})) \
        is None
    assert refusal("vault-snapshot-restore", "existing", frozenset()) is None


# ---- planning ------------------------------------------------------------------------
def test_without_faults_only_the_snapshot_drill_is_planned(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    s = settings(tmp_path)
    for name, lacking in (("vault-leader-loss", "missing: pod-faults"),
                          ("eso-outage", "missing: eso-metrics, pod-faults")):
        with pytest.raises(HarnessError) as info:
            plan_drill(name, s, backend="existing", config=cfg)
        assert lacking in str(info.value) and str(cfg) in str(info.value)
    plan = plan_drill("vault-snapshot-restore", s, backend="existing", config=cfg,
                      confirmed=True)
    assert plan.backend == "existing" and plan.reuse and plan.confirmed
    assert plan.existing is not None and plan.existing.source == cfg
    assert plan.settings.state_dir == s.state_dir
    assert not (tmp_path / "drills").exists() and not s.state_dir.exists()


def test_with_faults_and_metrics_the_fault_drills_are_planned(tmp_path: Path) -> None:
    cfg = config(tmp_path, faults=FAULTS, eso={"metrics": ["http://127.0.0.1:2/metrics"]})
    for name in ("vault-leader-loss", "eso-outage"):
        assert plan_drill(name, settings(tmp_path), backend="existing",
                          config=cfg).backend == "existing"


def test_the_snapshot_restore_waits_for_the_flag(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as info:
        plan_drill("vault-snapshot-restore", settings(tmp_path), backend="existing",
                   config=config(tmp_path))
    text = str(info.value)
    assert "--yes-restore-vault" in text and "whole Vault cluster" in text


@pytest.mark.parametrize("kwargs,message", [
    ({"backend": "existing"}, "--backend existing needs --config FILE"),
    ({"backend": "existing", "profile": "dev", "confirmed": True, "cfg": True},
     "--profile does not apply to --backend existing"),
    ({"backend": "local", "cfg": True}, "--config is the existing backend's endpoints"),
])
def test_bad_combinations_are_refused(tmp_path: Path, kwargs: dict[str, Any],
                                      message: str) -> None:
    cfg = config(tmp_path) if kwargs.pop("cfg", False) else None
    profile = kwargs.pop("profile", None)
    with pytest.raises(HarnessError, match=message):
        plan_drill("vault-snapshot-restore", settings(tmp_path), profile, config=cfg,
                   **kwargs)


# ---- objectives ----------------------------------------------------------------------
def test_objectives_the_drill_s_then_the_config_s_then_rto(tmp_path: Path) -> None:
    assert objectives_for("vault-snapshot-restore", "existing").rto_seconds == 30
    cfg = ExistingConfig.load(config(tmp_path, objectives={
        "vault-snapshot-restore": {"rto_seconds": 12.5, "rpo_writes": 2}}))
    from_config = objectives_for("vault-snapshot-restore", "existing", config=cfg)
    assert (from_config.rto_seconds, from_config.rpo_writes) == (12.5, 2)
    assert "objectives.vault-snapshot-restore of" in from_config.note
    with_rto = objectives_for("vault-snapshot-restore", "existing", rto=4, config=cfg)
    assert (with_rto.rto_seconds, with_rto.rpo_writes) == (4, 2)
    assert "--rto" in with_rto.note
    assert objectives_for("eso-outage", "local", rto=7).rto_seconds == 7
    plan = plan_drill("vault-snapshot-restore", settings(tmp_path), backend="existing",
                      config=cfg.source, rto=9, confirmed=True)
    assert plan.objectives is not None and plan.objectives.rto_seconds == 9
    assert plan_drill("eso-outage", settings(tmp_path), rto=3).objectives == \
        Objectives(3, 0, "set by --rto")
    listed = {d["name"]: d for d in drill_catalog("existing", cfg.capabilities(), cfg)}
    assert listed["vault-snapshot-restore"]["backends"]["existing"]["rto_seconds"] == 12.5
    assert listed["vault-snapshot-restore"]["backends"]["local"]["rto_seconds"] == 30


@pytest.mark.parametrize("objectives,message", [
    ({"vault-snapshot-restore": {"rto_seconds": -1}},
     "objectives.vault-snapshot-restore.rto_seconds must be a number of seconds > 0"),
    ({"vault-snapshot-restore": {"rto_seconds": 0}}, "> 0, got 0 (a number)"),
    ({"vault-snapshot-restore": {"rto_seconds": True}}, "got true (a boolean)"),
    ({"vault-snapshot-restore": {"rpo_writes": 1.5}}, "rpo_writes must be a whole number"),
    ({"vault-snapshot-restore": {"rto": 5}}, "takes rpo_writes and/or rto_seconds, not rto"),
    ({"vault-snapshot-restore": 30}, "objectives.vault-snapshot-restore must be a mapping"),
])
def test_bad_objectives_are_named_with_the_file(tmp_path: Path, objectives: dict[str, Any],
                                                message: str) -> None:
    path = config(tmp_path, objectives=objectives)
    with pytest.raises(BackendError, match=str(path)) as info:
        ExistingConfig.load(path)
    assert message in str(info.value)


def test_objectives_for_an_unknown_drill_are_refused(tmp_path: Path) -> None:
    path = config(tmp_path, objectives={"vault-snapshot-restor": {"rto_seconds": 5}})
    with pytest.raises(HarnessError, match=r"unknown drill.*vault-snapshot-restor; known"):
        plan_drill("vault-snapshot-restore", settings(tmp_path), backend="existing",
                   config=path, confirmed=True)


# ---- run_drill's own refusals ----------------------------------------------------------
def test_run_drill_refuses_before_the_drill_runs() -> None:
    platform = SimpleNamespace(backend="existing", capabilities=frozenset(),
                               settings=Settings())
    with pytest.raises(HarnessError, match="--yes-restore-vault"):
        run_drill("vault-snapshot-restore", platform)
    with pytest.raises(HarnessError, match="missing: pod-faults"):
        run_drill("vault-leader-loss", platform)


def test_a_vault_without_raft_storage_is_refused_before_any_change() -> None:
    class Sys:
        def read_raft_config(self) -> dict[str, Any]:
            raise hvac.exceptions.InvalidRequest("unsupported path")

    with pytest.raises(HarnessError, match="needs integrated \\(raft\\) storage"):
        existing_drills.raft_servers(SimpleNamespace(sys=Sys()), "http://vault:8200")


# ---- JUnit XML ----------------------------------------------------------------------
def result(verdict_ok: bool = True, error: str | None = None) -> DrillResult:
    r = DrillResult(drill="vault-snapshot-restore", description="d", profile="existing",
                    started_utc="2026-01-01T00:00:00Z", objectives=Objectives(30),
                    backend="existing")
    run = DrillRun(r)
    run.fault("accident")
    run.restored("back")
    run.check("data equals the snapshot", verdict_ok)
    run.measure("eso_resync", 0.25)
    r.rpo = {"lost": 6, "unit": "write(s)", "window_seconds": 0.3, "unexpected_loss": 0}
    if error:
        run.error(error)
    r.duration = 7.5
    return r


def test_junit_of_a_pass_has_one_testcase_with_the_figures(tmp_path: Path) -> None:
    path = write_junit(tmp_path / "out" / "junit.xml", [result()])
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("1", "0", "0", "0")
    [case] = suite.findall("testcase")
    assert case.get("name") == "vault-snapshot-restore"
    assert case.get("classname") == "drill.existing" and case.get("time") == "7.500"
    assert case.find("failure") is None and case.find("error") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["verdict"] == "PASS" and float(props["rto_seconds"] or "x") >= 0
    assert props["rto_objective_seconds"] == "30" and props["rpo_lost"] == "6"
    assert props["measurement.eso_resync"] == "0.25"
    assert "accident" in (case.findtext("system-out") or "")


def test_junit_of_a_fail_an_abort_and_a_refusal(tmp_path: Path) -> None:
    secret = "drl-junit-5e3f9a7c1b2d"
    REDACTOR.add(secret)
    items: list[Any] = [result(verdict_ok=False),
                        result(error=f"HarnessError: token {secret} refused"),
                        NotRun("vault-leader-loss", "existing", "missing: pod-faults"),
                        NotRun("eso-outage", "existing", "cannot reach Vault", error=True)]
    path = write_junit(tmp_path / "junit.xml", items)
    text = path.read_text()
    assert secret not in text
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "2", "1")
    failed, aborted, refused, unreachable = suite.findall("testcase")
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "check failed: data equals the snapshot"
    error = aborted.find("error")
    assert error is not None and "drill aborted: HarnessError" in (error.get("message") or "")
    skipped = refused.find("skipped")
    assert skipped is not None and skipped.get("message") == "missing: pod-faults"
    assert unreachable.find("error") is not None


# ---- the command line ----------------------------------------------------------------
def test_drill_list_json_says_what_runs_on_the_existing_backend(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    res = harness(tmp_path, "drill", "list", "--config", str(cfg), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["backend"] == "existing" and doc["capabilities"] == []
    drills = {d["name"]: d for d in doc["drills"]}
    assert drills["vault-snapshot-restore"]["runnable"] is True
    assert drills["vault-snapshot-restore"]["backends"]["existing"]["confirm"]
    assert drills["vault-leader-loss"]["runnable"] is False
    assert "missing: pod-faults" in drills["vault-leader-loss"]["reason"]
    assert drills["eso-outage"]["backends"]["existing"]["needs"] == ["eso-metrics",
                                                                     "pod-faults"]
    assert "no version for the existing backend" in drills["vault-restore"]["reason"]
    plain = harness(tmp_path, "drill", "list", "--json")
    assert plain.returncode == 0, plain.stderr
    listed = json.loads(plain.stdout)
    assert listed["backend"] is None and "runnable" not in listed["drills"][0]
    table = harness(tmp_path, "drill", "list", "--backend", "existing", "--config", str(cfg))
    assert table.returncode == 0 and "lacks pod-faults" in table.stdout


def test_drill_run_refused_writes_json_and_junit_and_exits_2(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    junit = tmp_path / "junit.xml"
    res = harness(tmp_path, "drill", "run", "vault-leader-loss", "--backend", "existing",
                  "--config", str(cfg), "--junit-xml", str(junit), "--json")
    assert res.returncode == 2, res.stderr
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "REFUSED" and "missing: pod-faults" in doc["reasons"][0]
    assert "missing: pod-faults" in res.stderr and "Traceback" not in res.stderr
    skipped = ET.parse(junit).getroot().find("testsuite/testcase/skipped")
    assert skipped is not None and "pod-faults" in (skipped.get("message") or "")
    flagless = harness(tmp_path, "drill", "run", "vault-snapshot-restore", "--config",
                       str(cfg))
    assert flagless.returncode == 2 and "--yes-restore-vault" in flagless.stderr
    assert not (tmp_path / "drill-reports").exists()


def test_drill_run_cannot_reach_the_cluster_is_an_error_testcase(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    res = harness(tmp_path, "drill", "run", "vault-snapshot-restore", "--config",
                  str(config(tmp_path)), "--yes-restore-vault", "--junit-xml", str(junit),
                  "--json")
    assert res.returncode == 2, res.stderr
    assert "kubeconfig" in res.stderr and "does not exist" in res.stderr
    assert json.loads(res.stdout)["verdict"] == "ERROR"
    assert ET.parse(junit).getroot().find("testsuite/testcase/error") is not None


# ---- the existing backend's vault-leader-loss, against fakes -------------------------
class FakeProbe:
    def __init__(self) -> None:
        self.kube = object()
        self.written = {f"k{i:02d}": "d" for i in range(3)}

    def wait_service(self, timeout: float) -> float:
        return 0.1

    def write(self, key: str) -> str:
        self.written[key] = "d"
        return "v"

    def wait_secret(self, timeout: float = 60, force: bool = True) -> float:
        return 0.2

    def read_digest(self, key: str) -> str | None:
        return self.written.get(key)


class FakeFaults:
    def __init__(self, pods: int, replaced: bool) -> None:
        self.faults = FAULTS
        self.pods = [SimpleNamespace(metadata=SimpleNamespace(name=f"vault-{i}"))
                     for i in range(pods)]
        self.replaced = replaced
        self.active = "vault-0"
        self.deleted: list[str] = []

    def vault_pods(self) -> list[Any]:
        return self.pods

    def wait_vault_active(self, timeout: float = 120) -> str:
        return self.active

    def delete_vault_pod(self, name: str | None = None, grace_seconds: int = 0) -> str:
        assert name is not None
        self.deleted.append(name)
        self.active = "vault-1"
        return "uid-0"

    def wait_vault_pod_replaced(self, name: str, old_uid: str, timeout: float = 120) -> None:
        if not self.replaced:
            raise HarnessError("timed out: the replaced vault-0 Ready")


def leader_loss(monkeypatch: pytest.MonkeyPatch, faults: FakeFaults) -> DrillResult:
    probe = FakeProbe()
    monkeypatch.setattr(existing_drills, "probe_with_keys",
                        lambda _p, _r: (probe, list(probe.written)))
    platform = SimpleNamespace(faults=lambda _kube: faults,
                               config=SimpleNamespace(source=Path("e.yaml")))
    r = DrillResult(drill="vault-leader-loss", description="d", profile="existing",
                    started_utc="-", objectives=Objectives(10), backend="existing")
    existing_drills.vault_leader_loss(platform, DrillRun(r))  # type: ignore[arg-type]
    return r


def test_leader_loss_on_existing_deletes_the_active_pod(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    faults = FakeFaults(pods=3, replaced=True)
    r = leader_loss(monkeypatch, faults)
    assert faults.deleted == ["vault-0"]
    assert r.verdict == "PASS", r.reasons
    assert r.rpo["lost"] == 0 and "replacement_ready" in r.measurements


def test_leader_loss_on_existing_fails_when_the_replacement_stays_sealed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    r = leader_loss(monkeypatch, FakeFaults(pods=3, replaced=False))
    assert r.verdict == "FAIL"
    assert any("unseal it as the runbook says" in x for x in r.reasons)


def test_leader_loss_on_existing_needs_an_ha_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    faults = FakeFaults(pods=1, replaced=True)
    with pytest.raises(HarnessError, match="needs an HA Vault: 1 Pod"):
        leader_loss(monkeypatch, faults)
    assert faults.deleted == []  # nothing done
