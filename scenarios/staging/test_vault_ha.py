"""Staging profile: 3-node raft Vault with TLS, initialized 5/3, behind a Service that
routes only to ready nodes — and ESO syncing through it."""

from __future__ import annotations

import base64
import json
import stat
import time

import pytest

from harness import eventually

pytestmark = pytest.mark.slow


def test_three_raft_voters_initialized_with_5_shares_threshold_3(staging):
    vault = staging.component("vault")  # `bao` (the runbook's `vault`) via the Service
    status = json.loads(vault.bao("status", "-format=json").stdout)
    assert (status["initialized"], status["sealed"], status["n"], status["t"],
            status["storage_type"]) == (True, False, 5, 3, "raft")
    peers = json.loads(vault.bao("operator", "raft", "list-peers",
                                 "-format=json").stdout)["data"]["config"]["servers"]
    assert sorted((p["node_id"], p["voter"]) for p in peers) == [
        ("vault-0", True), ("vault-1", True), ("vault-2", True)]
    assert sum(p["leader"] for p in peers) == 1


def test_unseal_keys_and_root_token_stay_in_0600_files_only(staging):
    vault = staging.component("vault")
    for f in (vault.init_file, vault.root_token_file):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    init = vault.init_data()
    assert len(init["keys"]) == 5
    texts = [p.read_text(errors="replace") for p in staging.state.root.joinpath(
        "logs").glob("*")] + [staging.state.file.read_text()]
    for secret in [init["root_token"], *init["keys"], *init["keys_base64"]]:
        assert not any(secret in t for t in texts)


def test_the_spec_store_written_with_http_fails_against_tls_vault(staging, staging_eso):
    """The spec wants TLS for all Vault traffic, yet its store says http:// — on a TLS
    Vault (staging), ESO cannot log in. The harness shows it instead of papering over."""
    staging_eso.apply(staging.settings.fixtures_dir / "gitops" / "secrets" /
                      "cluster-secret-store.yaml")
    logs = [staging.state.log(n) for n in staging.component("eso").replica_names]
    eventually(lambda: any("Client sent an HTTP request to an HTTPS server" in log.read_text()
                           for log in logs),
               timeout=60, description="ESO (its leader) reports http:// against TLS Vault")
    css = staging_eso.kube.custom.get_cluster_custom_object(
        "external-secrets.io", "v1beta1", "clustersecretstores", "vault-cluster-backend")
    ready = next(c for c in css["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


def test_a_tls_store_syncs_through_the_vault_service(staging, staging_eso, staging_kube):
    ca = (staging.state.pki_dir / "ca.crt").read_bytes()
    staging_eso.apply_object({
        "apiVersion": "external-secrets.io/v1beta1", "kind": "ClusterSecretStore",
        "metadata": {"name": "vault-tls"},
        "spec": {"provider": {"vault": {
            "server": "https://vault.vault.svc.cluster.local:8200", "path": "secret",
            "version": "v2", "caBundle": base64.b64encode(ca).decode(),
            "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "external-secrets",
                                    "serviceAccountRef": {"name": "external-secrets",
                                                          "namespace": "external-secrets"}}}}}},
    }, None)
    staging_eso.apply(staging.settings.fixtures_dir / "gitops" / "secrets" /
                      "redis-credentials.yaml", "default",
                      mutate=lambda o: o["spec"]["secretStoreRef"].update(name="vault-tls"))
    staging_eso.wait_synced("default", "redis-credentials", timeout=60)
    assert staging_eso.secret_value("default", "redis-credentials", "password") == \
        staging.component("vault").kv_get("redis/main")["password"]


def test_a_restarted_node_is_sealed_and_out_of_the_service_until_unsealed(staging):
    """Spec troubleshooting #3: a restarted node comes back sealed; fewer key shares than
    the threshold leave it sealed; meanwhile the Service routes around it."""
    vault = staging.component("vault")
    active = vault.active_node()
    standby = next(n for n in vault.node_names if n != active)
    log = staging.state.log("vault-service")
    seen = log.stat().st_size  # the shared environment's log has earlier DOWN/UPs

    def service_log() -> str:
        with log.open() as f:
            f.seek(seen)
            return f.read()

    staging.restart_process(standby)
    assert vault.health(standby)["sealed"] is True
    eventually(lambda: f"vault-nodes/{standby} is DOWN" in service_log(), timeout=15,
               description=f"the Service takes {standby} out")
    client = vault.client(url=vault.address)  # through the Service, not the active node
    for _ in range(30):  # every request lands on a ready node
        assert client.secrets.kv.v2.read_secret_version(
            path="redis/main", mount_point="secret", raise_on_deleted_version=True)
    assert vault.unseal(standby, keys=vault.unseal_keys()[:2]) is False
    assert vault.health(standby)["sealed"] is True
    assert vault.unseal(standby) is True
    eventually(lambda: f"vault-nodes/{standby} is UP" in service_log(), timeout=15,
               description=f"{standby} back in the Service")


def test_killing_the_active_node_fails_over_and_eso_keeps_syncing(staging, staging_eso):
    """kill -9 the active node: a standby becomes active (time measured), ESO keeps
    syncing through the Service, and a value written after failover reaches the Secret.
    The killed node then restarts sealed and rejoins once unsealed."""
    vault = staging.component("vault")
    old_active = vault.active_node()
    assert old_active is not None
    staging.process(old_active).kill()
    t0 = time.monotonic()
    new = vault.wait_new_active(old_active)
    failover = time.monotonic() - t0
    print(f"\nfailover: {old_active} killed -> {new} active in {failover:.2f}s")

    vault.kv_put("redis/main", password="written-after-failover")
    staging_eso.force_sync("default", "redis-credentials")
    staging_eso.wait_value("default", "redis-credentials", "password",
                           "written-after-failover", timeout=60)

    staging.start_process(old_active)
    assert vault.health(old_active)["sealed"] is True
    assert vault.unseal(old_active) is True
    vault.wait_voters()
