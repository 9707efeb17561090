"""The spec's runbook, typed as written, against the platform running as Pods (the pods
backend; kind would be the same): every command goes through `kubectl` — and `vault`
inside the Vault Pod — and each result is checked, not just its exit code.

Covered: `kubectl get nodes,pods --all-namespaces`, `kubectl get externalsecrets
--all-namespaces`, `kubectl exec -n vault vault-0 -- vault status`, `vault operator raft
snapshot save` / `restore` (staging/prod: the dev profile's Vault has no raft; restore
is right on the leader only — through a standby it exits 0, restores nothing and seals
that Pod: a finding),
`kubectl annotate externalsecret ... force-sync=$(date +%s) --overwrite`, `kubectl logs
... deployment/external-secrets`, `kubectl rollout restart deployment`. `kubectl top
nodes` needs metrics-server, which the platform does not install: not covered. Argo
CD's commands are in test_gitops_in_cluster.py.
"""

from __future__ import annotations

import json
import time

import pytest

from harness import eventually

from .helpers import synced_secret

pytestmark = [pytest.mark.portable, pytest.mark.needs("in-cluster")]

ESO_NS = "external-secrets"  # the spec names no namespace; the is -system


def vault_in_pod(kube, platform, *args: str, pod: str = "vault-0", check: bool = True):
    """`kubectl exec -n vault <pod> -- vault <args>` with the root token in VAULT_TOKEN —
    given over stdin, never in argv, as an operator's shell would export it."""
    token = platform.config.vault_token_file.read_text().strip()
    return kube.kubectl("exec", "-i", "-n", "vault", pod, "--", "sh", "-c",
                        'read -r VAULT_TOKEN; export VAULT_TOKEN; exec vault "$@"', "vault",
                        *args, input=f"{token}\n", check=check, timeout=120)


def test_get_nodes_and_pods_shows_the_real_node_and_the_platform(kube):
    listing = kube.kubectl("get", "nodes,pods", "--all-namespaces", "-o", "wide").stdout
    # the node Vault runs on (the real node of the pods backend, kind's control plane)
    name = kube.core.read_namespaced_pod("vault-0", "vault").spec.node_name
    node = next(line for line in listing.splitlines() if line.startswith(f"node/{name} "))
    assert " Ready " in f" {node} "
    pods = {line.split()[1]: line.split()[3] for line in listing.splitlines()
            if line.startswith(("vault ", "external-secrets ", "argocd ", "monitoring "))}
    assert pods["pod/vault-0"] == "Running"
    assert any(n.startswith("pod/external-secrets-") and s == "Running"
               for n, s in pods.items())
    assert all(s in ("Running", "Completed") for n, s in pods.items() if n.startswith(
        ("pod/vault-", "pod/argocd-", "pod/prometheus-"))), pods  # Completed: Argo's Job


def test_vault_status_inside_vault_0_is_unsealed(kube, platform):
    status = json.loads(kube.kubectl("exec", "-n", "vault", "vault-0", "--", "vault",
                                     "status", "-format=json").stdout)
    assert status["sealed"] is False and status["initialized"] is True
    assert status["storage_type"] in ("raft", "inmem")
    if status["storage_type"] == "raft":  # staging/prod: 3 Pods, 5 shares, threshold 3
        assert (status["n"], status["t"]) == (5, 3) and status["ha_enabled"] is True


def vault_status(kube, pod: str) -> dict:
    """`kubectl exec -n vault <pod> -- vault status -format=json` (exit 2 when sealed)."""
    run = kube.kubectl("exec", "-n", "vault", pod, "--", "vault", "status", "-format=json",
                       check=False)
    return json.loads(run.stdout)


def applied_everywhere(kube, pods: list[str], leader: dict) -> None:
    """Wait until each Pod has applied what the leader had committed. A Pod restarted by
    an earlier test (the pod faults delete vault-0) refuses `raft snapshot save` with
    500 "nothing new to snapshot" until it has applied a log entry since its start:
    hashicorp/raft's FSM index starts at 0 when the snapshot is not restored on start
    (hashicorp/raft#56; seen here in CI, 2026-12-03)."""
    target = leader.get("raft_committed_index")
    if target is None:  # no raft index in this status: nothing to wait on
        return

    def behind() -> list[str]:
        return [p for p in pods
                if int(vault_status(kube, p).get("raft_applied_index") or 0) < target]
    eventually(lambda: not behind(), timeout=60,
               description=f"{', '.join(pods)} applied raft index {target}")


def test_raft_snapshot_restore_works_on_the_leader_and_silently_not_on_a_standby(
        kube, platform, vault, faults, namespace):
    """The runbook's `kubectl exec -n vault vault-0 -- vault operator raft snapshot
    restore` is right only while vault-0 leads. Through a standby the command exits 0,
    restores nothing, and seals that standby ("shutting down prior to restoring
    snapshot", then "node is not the leader" in its log only)."""
    if vault_status(kube, "vault-0")["storage_type"] != "raft":
        pytest.skip("the dev profile's Vault is one dev-mode Pod without raft storage")
    active = faults.wait_vault_active()
    standby = next(p.metadata.name for p in faults.vault_pods() if p.metadata.name != active)
    key = f"{namespace}/dr-marker"
    vault.kv_put(key, value="saved-snap-9c4")
    applied_everywhere(kube, [active, standby], vault_status(kube, active))
    for pod in (active, standby):  # each Pod keeps the snapshot on its own volume
        vault_in_pod(kube, platform, "operator", "raft", "snapshot", "save",
                     "/vault/data/backup.snap", pod=pod)
        size = kube.kubectl("exec", "-n", "vault", pod, "--", "sh", "-c",
                            "wc -c < /vault/data/backup.snap").stdout.strip()
        assert int(size) > 1000
    vault.kv_put(key, value="written-after-the-snapshot")

    # the finding: through a standby, success and nothing restored
    done = vault_in_pod(kube, platform, "operator", "raft", "snapshot", "restore",
                        "/vault/data/backup.snap", pod=standby, check=False)
    assert done.returncode == 0
    eventually(lambda: vault_status(kube, standby)["sealed"] is True, timeout=60,
               description=f"the standby {standby} sealed itself")
    assert (vault.kv_get(key) or {}).get("value") == "written-after-the-snapshot"
    faults.unseal(standby)  # the runbook's unseal, original keys
    eventually(lambda: vault_status(kube, standby)["sealed"] is False, timeout=60,
               description=f"{standby} unsealed again")

    # the runbook's command on the leader restores
    vault_in_pod(kube, platform, "operator", "raft", "snapshot", "restore",
                 "/vault/data/backup.snap", pod=active)
    eventually(lambda: (vault.kv_get(key) or {}).get("value") == "saved-snap-9c4", timeout=120,
               retry_on=(Exception,), description="the restored value read back")
    assert not any(vault_status(kube, p.metadata.name)["sealed"] for p in faults.vault_pods())
    vault.kv_delete_tree(namespace)


def test_force_sync_annotation_as_typed_delivers_a_new_value(kube, eso, vault, vault_store,
                                                            namespace):
    key = synced_secret(eso, vault, vault_store, namespace, value="v1")
    vault.kv_put(key, password="v2")  # refreshInterval is 1h: only the annotation helps
    kube.kubectl("annotate", "externalsecret", "app", "-n", namespace,
                 f"force-sync={int(time.time())}", "--overwrite")
    eso.wait_value(namespace, "app", "password", "v2", timeout=60)
    listing = kube.kubectl("get", "externalsecrets", "--all-namespaces").stdout
    row = next(line for line in listing.splitlines() if line.startswith(f"{namespace} "))
    assert "SecretSynced" in row and "True" in row


def test_eso_logs_show_its_reconciles(kube, eso, vault, vault_store, namespace):
    synced_secret(eso, vault, vault_store, namespace)
    logs = kube.kubectl("logs", "-n", ESO_NS, "deployment/external-secrets",
                        "--since=10m").stdout
    assert logs.strip(), "kubectl logs returned nothing"
    assert all(line.startswith("{") for line in logs.splitlines()[:20])  # JSON lines
    assert "vault" in logs.lower() or namespace in logs


def test_rollout_restart_replaces_eso_and_delivery_goes_on(kube, eso, vault, vault_store,
                                                          namespace):
    key = synced_secret(eso, vault, vault_store, namespace, value="before-restart-6a2")
    selector = "app.kubernetes.io/name=external-secrets"
    before = {p.metadata.name for p in kube.core.list_namespaced_pod(
        ESO_NS, label_selector=selector).items}
    kube.kubectl("rollout", "restart", "deployment", "external-secrets", "-n", ESO_NS)
    kube.kubectl("rollout", "status", "deployment", "external-secrets", "-n", ESO_NS,
                 "--timeout=180s", timeout=200)

    def replaced() -> set[str] | None:
        # the old Pod may still be Terminating (phase Running, deletion set) a moment
        pods = {p.metadata.name for p in kube.core.list_namespaced_pod(
            ESO_NS, label_selector=selector).items
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None}
        return pods if pods and not pods & before else None

    eventually(replaced, timeout=120, description="ESO's Pods all new after the restart")
    vault.kv_put(key, password="after-restart-6a2")
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "after-restart-6a2", timeout=120)
