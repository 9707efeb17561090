"""The DR drills on the pods backend (issue 15): `harness drill run NAME --backend pods`
on ONE pods staging environment — Vault as the chart's 3 raft Pods with TLS, ESO as its
Deployment, on the real node — each drill as Kubernetes operations (kubectl delete pod,
kubectl scale, kubectl exec ... bao), with the same verdicts and reports as on the local
backend. The environment is started once, as `harness up --backend pods` does; every
drill attaches to it (it is recorded running in the state dir) and leaves it whole:
eso-outage, then the loss of the active Vault Pod, then the full loss and restore of
Vault's data, after which the original keys still unseal every Pod and ESO syncs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.install.session import start_detached
from harness.backends.pods.environment import PodsEnvironment
from harness.drills.runner import run_drill_session
from harness.settings import Settings

pytestmark = [pytest.mark.scenario, pytest.mark.slow, pytest.mark.real_node]


@pytest.fixture(scope="module")
def pods_staging() -> Iterator[PodsEnvironment]:
    if os.geteuid() != 0:
        pytest.skip("the pods backend's node needs root")
    # A short state dir: the kubelet's sockets live under it (107-byte limit)
    state = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp"))
    env = PodsEnvironment(Settings(state_dir=state, profile="staging"))
    try:
        start_detached(env)
        yield env
    finally:
        env.down()
        shutil.rmtree(state, ignore_errors=True)


def report(directory: Path) -> dict[str, Any]:
    for name in ("report.md", "report.html", "timeline.png"):
        assert (directory / name).is_file(), name
    data: dict[str, Any] = json.loads((directory / "report.json").read_text())
    return data


def assert_passed(data: dict[str, Any], objective: float) -> None:
    assert data["verdict"] == "PASS", data["reasons"]
    assert data["reasons"] == []
    assert data["rto_seconds"] is not None and 0 < data["rto_seconds"] <= objective
    assert data["objectives"]["rto_seconds"] == objective
    checks = {e["message"]: e["ok"] for e in data["events"] if e["kind"] == "check"}
    assert checks and all(checks.values()), checks
    assert [e["kind"] for e in data["events"]].count("fault") == 1


def test_eso_outage_from_the_command_line(pods_staging: PodsEnvironment,
                                          tmp_path: Path) -> None:
    state = pods_staging.settings.state_dir
    res = subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir", str(state),
                          "drill", "run", "eso-outage", "--backend", "pods", "--report",
                          str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert f"on the running staging pods environment in {state}" in res.stderr
    assert "PASS" in res.stderr
    data = report(tmp_path)
    assert_passed(data, 60)
    assert data["profile"] == "staging"
    assert "Deployment" in data["description"]
    assert data["rpo"] == {"lost": 0, "unit": "Secret(s)", "unexpected_loss": 0}
    assert {"ready_after_scale_up", "syncing_after_restart",
            "sync_after_force_sync"} <= set(data["measurements"])
    assert any(e["kind"] == "fault" and "--replicas=0" in e["message"]
               for e in data["events"])
    assert not (state.parent / "drills" / "eso-outage").exists()  # nothing of its own


def test_vault_leader_loss(pods_staging: PodsEnvironment, tmp_path: Path) -> None:
    outcome = run_drill_session("vault-leader-loss", pods_staging.settings,
                                backend="pods", report_dir=tmp_path)
    assert outcome.plan.reuse and outcome.plan.backend == "pods"
    data = report(tmp_path)
    assert_passed(data, 10)
    assert data["rpo"] == {"lost": 0, "unit": "write(s)", "unexpected_loss": 0}
    assert {"new_active_after_delete", "eso_sync_after_failover"} <= set(data["measurements"])
    fault = next(e for e in data["events"] if e["kind"] == "fault")
    assert fault["message"].startswith("kubectl delete pod vault-")
    assert data["events"][-1]["kind"] == "recovery"
    assert "raft voter" in data["events"][-1]["message"]


def test_vault_restore_from_a_raft_snapshot(pods_staging: PodsEnvironment,
                                            tmp_path: Path) -> None:
    init = pods_staging.dir / "vault-init.json"
    keys_before = init.read_bytes()
    outcome = run_drill_session("vault-restore", pods_staging.settings, backend="pods",
                                report_dir=tmp_path)
    assert outcome.plan.reuse
    data = report(tmp_path)
    assert_passed(data, 30)
    rpo = data["rpo"]
    assert rpo["lost"] == 6 and rpo["unit"] == "write(s)" and rpo["unexpected_loss"] == 0
    assert rpo["window_seconds"] > 0
    messages = " | ".join(e["message"] for e in data["events"])
    for step in ("snapshot save", "--replicas=0", "kubectl delete pvc", "operator init",
                 "snapshot restore -force", "ORIGINAL keys", "--replicas=3"):
        assert step in messages, step
    # Vault whole afterwards: the original keys and root token, every Pod unsealed
    assert init.read_bytes() == keys_before
    pods = pods_staging.faults(pods_staging.kube_client()).vault_pods()
    assert len(pods) == 3
    assert all(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
               for p in pods)
    assert pods_staging.vault.kv_get("heracles-drill/k00") is not None
    # and the throw-away keys kept apart, 0600, never in a report
    throwaway = sorted((pods_staging.dir / "backups" / "drills").glob("*-throwaway-init.json"))
    assert throwaway and (throwaway[-1].stat().st_mode & 0o777) == 0o600
    secrets = json.loads(throwaway[-1].read_text())["unseal_keys_b64"] + \
        json.loads(init.read_text())["unseal_keys_b64"]
    for name in ("report.json", "report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert not any(s in text for s in secrets), name
