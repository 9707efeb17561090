"""Drills on the pods backend, without a cluster: which drills run there, where a drill
runs (a recorded running pods environment, or its own staging one), the CLI's --backend
errors, and the Kubernetes-side helpers of harness/drills/pods.py against fakes (keys
and tokens over stdin, never in an argv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.drills import DRILLS, get, on_backend
from harness.drills.pods import VaultPods
from harness.drills.runner import default_profile, plan_drill, pods_running_profile
from harness.errors import HarnessError
from harness.runtime.registry import RunRegistry
from harness.settings import Settings

POD_DRILLS = ["vault-leader-loss", "vault-restore", "eso-outage"]


def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                    registry_dir=tmp_path / "registry")


def harness(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERACLES_STATE_DIR": str(tmp_path / "state"),
           "HERACLES_REGISTRY_DIR": str(tmp_path / "registry")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


# ---- the catalog ---------------------------------------------------------------------
def test_the_vault_and_eso_drills_run_on_pods_and_the_etcd_one_does_not() -> None:
    assert on_backend("pods") == POD_DRILLS
    assert on_backend("local") == list(DRILLS)
    with pytest.raises(HarnessError, match="drill 'cluster-state-restore' has no version "
                                           "for the pods backend; on pods: vault-leader-loss,"
                                           " vault-restore, eso-outage"):
        get("cluster-state-restore", "pods")
    with pytest.raises(HarnessError, match="unknown backend 'kind'"):
        get("vault-restore", "kind")


@pytest.mark.parametrize("name", POD_DRILLS)
def test_a_drill_on_pods_describes_kubernetes_operations(name: str) -> None:
    local, pods = get(name), get(name, "pods")
    assert local is DRILLS[name]  # the local drill unchanged
    assert pods.run is not local.run and pods.description != local.description
    assert pods.profiles == local.profiles and pods.name == name
    assert "kubectl" in pods.description or "StatefulSet" in pods.description \
        or "Deployment" in pods.description


# ---- where a drill runs ------------------------------------------------------------
@pytest.mark.parametrize("name", POD_DRILLS)
def test_on_pods_a_drill_starts_its_own_staging_environment(tmp_path: Path,
                                                            name: str) -> None:
    plan = plan_drill(name, settings(tmp_path), backend="pods")
    assert not plan.reuse and plan.backend == "pods"
    assert plan.settings.profile == "staging"  # eso-outage's first profile is dev
    assert plan.settings.state_dir == tmp_path / "drills" / name
    assert default_profile("eso-outage") == "dev"  # local: unchanged


def test_on_pods_an_explicit_profile_is_checked(tmp_path: Path) -> None:
    assert plan_drill("eso-outage", settings(tmp_path), "prod",
                      backend="pods").settings.profile == "prod"
    with pytest.raises(HarnessError, match="needs profile staging or prod"):
        plan_drill("vault-restore", settings(tmp_path), "dev", backend="pods")


def record_pods(s: Settings, profile: str, alive: bool = True) -> None:
    """What `harness up --backend pods` leaves: <state>/pods/pods.json and the run."""
    run_id = "run-test-pods"
    (s.state_dir / "pods").mkdir(parents=True)
    (s.state_dir / "pods" / "pods.json").write_text(json.dumps(
        {"run_id": run_id, "profile": profile}))
    if alive:
        RunRegistry(s.registry_dir).register(run_id, s.state_dir / "pods", "detached")


def test_on_pods_a_recorded_running_environment_is_reused(tmp_path: Path) -> None:
    s = settings(tmp_path)
    record_pods(s, "prod")
    assert pods_running_profile(s) == "prod"
    plan = plan_drill("vault-leader-loss", s, backend="pods")
    assert plan.reuse and plan.settings.profile == "prod"
    assert plan.settings.state_dir == s.state_dir
    # a profile asked for that differs: its own environment, next to it
    other = plan_drill("vault-leader-loss", s, "staging", backend="pods")
    assert not other.reuse and other.settings.state_dir == tmp_path / "drills" / \
        "vault-leader-loss"


def test_on_pods_an_unsuitable_or_stopped_environment_is_not_reused(tmp_path: Path) -> None:
    s = settings(tmp_path)
    record_pods(s, "dev")
    assert not plan_drill("vault-restore", s, backend="pods").reuse  # dev: no raft
    assert plan_drill("eso-outage", s, backend="pods").reuse
    stopped = settings(tmp_path / "b")
    record_pods(stopped, "staging", alive=False)
    assert pods_running_profile(stopped) is None
    assert not plan_drill("eso-outage", stopped, backend="pods").reuse


def test_a_local_environment_is_not_reused_by_a_pods_drill(tmp_path: Path) -> None:
    assert pods_running_profile(settings(tmp_path)) is None
    assert plan_drill("eso-outage", settings(tmp_path)).backend == "local"


# ---- the command line --------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["drill", "run", "cluster-state-restore", "--backend", "pods"],
     "drill 'cluster-state-restore' has no version for the pods backend; on pods: "
     "vault-leader-loss, vault-restore, eso-outage"),
    (["drill", "run", "vault-restore", "--backend", "kind"],
     "Invalid value for '--backend': 'kind' is not one of"),
    (["drill", "run", "vault-restore", "--backend", "pods", "--profile", "dev"],
     "drill 'vault-restore' needs profile staging or prod"),
    (["drill", "run", "vault-restor", "--backend", "pods"], "unknown drill 'vault-restor'"),
])
def test_bad_backend_input_is_named_and_nothing_starts(tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    res = harness(tmp_path, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "drills").exists() and not (tmp_path / "state").exists()


def test_drill_list_names_the_backends(tmp_path: Path) -> None:
    res = harness(tmp_path, "drill", "list")
    assert res.returncode == 0, res.stderr
    assert "backends" in res.stdout and "local, pods" in res.stdout
    assert "--backend" in harness(tmp_path, "drill", "run", "--help").stdout


# ---- the Kubernetes side, against fakes ----------------------------------------------
class FakeEnv:
    """What VaultPods uses of a PodsEnvironment; records every kubectl argv."""

    def __init__(self, tmp_path: Path, pods: list[Any]) -> None:
        self.dir = tmp_path
        self.argvs: list[tuple[str, ...]] = []
        self.stdins: list[str] = []
        self._pods = pods
        (tmp_path / "root-token").write_text("s.roottoken-fake-123\n")

    def faults(self, _kube: Any) -> Any:
        return SimpleNamespace(vault_pods=lambda: self._pods)

    def vault_pods(self) -> list[str]:
        return ["vault-0", "vault-1", "vault-2"]

    def run_kubectl(self, *args: str, input_: str | None = None) -> str:
        self.argvs.append(args)
        self.stdins.append(input_ or "")
        if "status" in " ".join(args):
            return '{"sealed": true, "initialized": true}'
        return ""


def pod(name: str, active: bool = False, ready: bool = True) -> Any:
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, uid=f"uid-{name}",
                                 labels={"vault-active": "true" if active else "false"}),
        status=SimpleNamespace(phase="Running", conditions=[
            SimpleNamespace(type="Ready", status="True" if ready else "False")]))


def test_the_active_pod_is_the_labelled_ready_one_not_the_deleted_one(tmp_path: Path) -> None:
    env = FakeEnv(tmp_path, [pod("vault-0", active=True), pod("vault-1"), pod("vault-2")])
    vp = VaultPods(env, kube=None)  # type: ignore[arg-type]
    assert vp.active() == "vault-0"
    assert vp.active(exclude="vault-0") is None
    env._pods = [pod("vault-0", active=True, ready=False), pod("vault-1", active=True)]
    assert vp.active() == "vault-1"


def test_status_reads_sealed_from_bao_status_and_none_when_unanswered(tmp_path: Path) -> None:
    env = FakeEnv(tmp_path, [])
    vp = VaultPods(env, kube=None)  # type: ignore[arg-type]
    assert vp.sealed("vault-1") is True
    env.run_kubectl = lambda *a, input_=None: "not json"  # type: ignore[method-assign]
    assert vp.status("vault-1") is None and vp.sealed("vault-1") is None


def test_unseal_keys_travel_over_stdin_never_in_argv(tmp_path: Path) -> None:
    env = FakeEnv(tmp_path, [])
    vp = VaultPods(env, kube=None)  # type: ignore[arg-type]
    vp._unseal_with("vault-0", ["key-aaa-111", "key-bbb-222"])
    assert len(env.argvs) == 2
    assert all("key-" not in " ".join(a) for a in env.argvs)
    assert env.stdins == ["key-aaa-111\n", "key-bbb-222\n"]


def test_the_claims_are_the_statefulsets_own(tmp_path: Path) -> None:
    def claim(name: str) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(name=name))

    sts = SimpleNamespace(spec=SimpleNamespace(volume_claim_templates=[
        SimpleNamespace(metadata=SimpleNamespace(name="data"))]))
    kube = SimpleNamespace(
        apps=SimpleNamespace(read_namespaced_stateful_set=lambda _n, _ns: sts),
        core=SimpleNamespace(list_namespaced_persistent_volume_claim=lambda _ns:
                             SimpleNamespace(items=[claim("data-vault-0"),
                                                    claim("data-vault-2"),
                                                    claim("data-other-0"),
                                                    claim("audit-vault-0")])))
    vp = VaultPods(FakeEnv(tmp_path, []), kube=kube)  # type: ignore[arg-type]
    assert [c.metadata.name for c in vp.claims()] == ["data-vault-0", "data-vault-2"]
