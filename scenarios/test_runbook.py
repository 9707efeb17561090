"""The spec's runbook, typed as written, against the platform running as Pods (the pods
backend; kind would be the same): every command goes through `kubectl` — and `vault`
inside the Vault Pod — and each result is checked, not just its exit code.

Covered: `kubectl get nodes,pods --all-namespaces`, `kubectl get externalsecrets
--all-namespaces`, `kubectl exec -n vault vault-0 -- vault status`, `vault operator raft
snapshot save` / `restore` (staging/prod: the dev profile's Vault has no raft),
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
    node = next(line for line in listing.splitlines() if line.startswith("node/heracles-node"))
    assert " Ready " in f" {node} "
    pods = {line.split()[1]: line.split()[3] for line in listing.splitlines()
            if line.startswith(("vault ", "external-secrets ", "argocd ", "monitoring "))}
    assert pods["pod/vault-0"] == "Running"
    assert any(n.startswith("pod/external-secrets-") and s == "Running"
               for n, s in pods.items())
    assert all(s == "Running" for n, s in pods.items() if n.startswith(
        ("pod/vault-", "pod/argocd-", "pod/prometheus-"))), pods


def test_vault_status_inside_vault_0_is_unsealed(kube, platform):
    run = kube.kubectl("exec", "-n", "vault", "vault-0", "--", "vault", "status",
                       "-format=json")
    status = json.loads(run.stdout)
    assert status["sealed"] is False and status["initialized"] is True
    assert status["storage_type"] in ("raft", "inmem")
    if status["storage_type"] == "raft":  # staging/prod: 3 Pods, 5 shares, threshold 3
        assert (status["n"], status["t"]) == (5, 3) and status["ha_enabled"] is True


def test_raft_snapshot_save_and_restore_bring_back_what_was_saved(kube, platform, vault,
                                                                 namespace):
    storage = json.loads(kube.kubectl("exec", "-n", "vault", "vault-0", "--", "vault",
                                      "status", "-format=json").stdout)["storage_type"]
    if storage != "raft":
        pytest.skip("the dev profile's Vault is one dev-mode Pod without raft storage")
    key = f"{namespace}/dr-marker"
    vault.kv_put(key, value="saved")
    vault_in_pod(kube, platform, "operator", "raft", "snapshot", "save",
                 "/vault/data/backup.snap")
    size = kube.kubectl("exec", "-n", "vault", "vault-0", "--", "sh", "-c",
                        "wc -c < /vault/data/backup.snap").stdout.strip()
    assert int(size) > 1000
    vault.kv_put(key, value="written-after-the-snapshot")
    vault_in_pod(kube, platform, "operator", "raft", "snapshot", "restore",
                 "/vault/data/backup.snap")
    eventually(lambda: (vault.kv_get(key) or {}).get("value") == "saved", timeout=120,
               retry_on=(Exception,), description="the restored value read back")
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
    key = synced_secret(eso, vault, vault_store, namespace, value="before")
    selector = "app.kubernetes.io/name=external-secrets"
    before = {p.metadata.name for p in kube.core.list_namespaced_pod(
        ESO_NS, label_selector=selector).items}
    kube.kubectl("rollout", "restart", "deployment", "external-secrets", "-n", ESO_NS)
    kube.kubectl("rollout", "status", "deployment", "external-secrets", "-n", ESO_NS,
                 "--timeout=180s", timeout=200)
    after = {p.metadata.name for p in kube.core.list_namespaced_pod(
        ESO_NS, label_selector=selector).items if p.status.phase == "Running"}
    assert after and not after & before, (before, after)
    vault.kv_put(key, password="after")
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "after", timeout=120)
