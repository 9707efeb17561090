"""Spec troubleshooting #2 (External Secrets sync failure: Vault auth, network, policy)
and the security principles (least privilege, RBAC, audit of every access)."""

from __future__ import annotations

import json
import time

import hvac
import pytest
from kubernetes import client

from harness import eventually
from harness.clients.eso import set_store_access
from harness.runtime.redact import REDACTOR
from harness.vault_config.seed import parse_seed
from harness.wait import WaitTimeout

from .helpers import synced_secret

pytestmark = pytest.mark.portable
DENIED = "permission denied"


def sync_errors(eso, namespace: str, name: str) -> float:
    return eso.metric("externalsecret_sync_calls_error", name=name, namespace=namespace)


def test_a_value_that_never_arrives_times_out_on_time_naming_the_secret(
        eso, vault, vault_store, namespace):
    """wait_value watches the Secret: a change that never comes ends at the deadline,
    the message names the Secret and why (not the awaited value), for a Secret that
    exists and one that never will, with what ESO says of its ExternalSecret."""
    synced_secret(eso, vault, vault_store, namespace, value="delivered-once")
    for name, why, eso_says in (
            ("app", "not the expected value yet", "Ready condition True/SecretSynced"),
            ("absent", "does not exist", "ExternalSecret could not be read (404")):
        t0 = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            eso.wait_value(namespace, name, "password", "never-written-7f1", timeout=3)
        took = time.monotonic() - t0
        assert 3 <= took < 15, took
        message = str(caught.value)
        assert f"Secret {namespace}/{name}[password] updated" in message
        assert why in message and "never-written-7f1" not in message
        assert eso_says in message, message


@pytest.mark.needs("eso-metrics")
def test_a_policy_that_denies_the_path_fails_loudly_and_keeps_the_last_value(
        eso, vault, vault_store, namespace):
    key = synced_secret(eso, vault, vault_store, namespace)
    errors_before = sync_errors(eso, namespace, "app")
    set_store_access(vault, vault_store, allowed=False)
    vault.kv_put(key, password="never-delivered")
    eso.force_sync(namespace, "app")
    cond = eso.wait_error(namespace, "app")
    assert cond["reason"] == "SecretSyncedError"
    eventually(lambda: any(DENIED in e for e in eso.events(namespace, "app")), timeout=30,
               description="event says permission denied")
    eventually(lambda: sync_errors(eso, namespace, "app") > errors_before, timeout=30,
               description="externalsecret_sync_calls_error rises")
    assert eso.secret_value(namespace, "app", "password") == "good-value"

    set_store_access(vault, vault_store, allowed=True)
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "never-delivered")
    eso.wait_synced(namespace, "app")


def test_a_role_bound_to_another_service_account_cannot_log_in(
        eso, vault, vault_store, namespace):
    synced_secret(eso, vault, vault_store, namespace)
    vault.write_kubernetes_role(vault_store["role"], "someone-else", namespace,
                                [vault_store["policy"]])
    eso.force_sync(namespace, "app")
    eso.wait_error(namespace, "app")
    assert eso.secret_value(namespace, "app", "password") == "good-value"
    vault.write_kubernetes_role(vault_store["role"], "vault-reader", namespace,
                                [vault_store["policy"]])
    eso.force_sync(namespace, "app")
    eso.wait_synced(namespace, "app")


@pytest.mark.needs("eso-metrics")
def test_an_unreachable_vault_fails_loudly_and_recovers(eso, vault, vault_store, namespace,
                                                        free_port):
    synced_secret(eso, vault, vault_store, namespace)
    store = eso.kube.custom.get_namespaced_custom_object(
        "external-secrets.io", "v1beta1", namespace, "secretstores", "vault")
    good_server = store["spec"]["provider"]["vault"]["server"]
    closed_port = free_port  # nothing listens there
    patch = {"spec": {"provider": {"vault": {"server": f"http://127.0.0.1:{closed_port}"}}}}
    eso.kube.custom.patch_namespaced_custom_object(
        "external-secrets.io", "v1beta1", namespace, "secretstores", "vault", patch)
    errors_before = sync_errors(eso, namespace, "app")
    eso.force_sync(namespace, "app")
    eso.wait_error(namespace, "app")
    eventually(lambda: sync_errors(eso, namespace, "app") > errors_before, timeout=30,
               description="externalsecret_sync_calls_error rises")
    assert eso.secret_value(namespace, "app", "password") == "good-value"

    patch["spec"]["provider"]["vault"]["server"] = good_server
    eso.kube.custom.patch_namespaced_custom_object(
        "external-secrets.io", "v1beta1", namespace, "secretstores", "vault", patch)
    eso.force_sync(namespace, "app")
    eso.wait_synced(namespace, "app", timeout=60)


def eso_vault_token(kube, vault) -> str:
    """Log in exactly as ESO does: a token for its ServiceAccount, kubernetes auth role."""
    jwt = client.CoreV1Api(kube.api_client).create_namespaced_service_account_token(
        "external-secrets", "external-secrets",
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=600))).status.token
    REDACTOR.add(jwt)
    login = vault.client().auth.kubernetes.login(role="external-secrets", jwt=jwt)
    token = login["auth"]["client_token"]
    REDACTOR.add(token)
    return token


def test_the_eso_vault_token_reads_only_its_paths_and_cannot_write(kube, vault):
    eso_client = vault.client(token=eso_vault_token(kube, vault))
    kv = eso_client.secrets.kv.v2
    assert kv.read_secret_version(path="redis/main", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret(path="redis/main", secret={"password": "x"},
                                   mount_point="secret")
    vault.kv_put("outside/scope", password="not-for-eso")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version(path="outside/scope", mount_point="secret",
                               raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.list_secrets(path="", mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        eso_client.sys.list_policies()


def test_a_service_account_of_another_namespace_cannot_read_the_synced_secret(
        eso, kube, namespace, cluster_secret_store, platform):
    eso.apply(platform.settings.fixtures_dir / "gitops" / "secrets" /
              "redis-credentials.yaml", namespace)
    eso.wait_synced(namespace, "redis-credentials")
    other = f"{namespace}-x"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        kube.core.create_namespaced_service_account(
            other, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="intruder")))
        jwt = kube.core.create_namespaced_service_account_token(
            "intruder", other, client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[]))).status.token
        cfg = client.Configuration()
        cfg.host = kube.api_client.configuration.host
        cfg.ssl_ca_cert = kube.api_client.configuration.ssl_ca_cert
        cfg.api_key = {"authorization": f"Bearer {jwt}"}
        intruder = client.CoreV1Api(client.ApiClient(cfg))
        with pytest.raises(client.ApiException) as denied:
            intruder.read_namespaced_secret("redis-credentials", namespace)
        assert denied.value.status == 403
    finally:
        kube.core.delete_namespace(other)


@pytest.mark.needs("vault-audit-file")
def test_every_eso_read_is_audited_without_plaintext(eso, namespace, platform, vault):
    audit = vault.audit_log
    eso.apply(platform.settings.fixtures_dir / "gitops" / "secrets" /
              "harbor-credentials.yaml", namespace)
    eso.wait_synced(namespace, "harbor-credentials")
    eso.force_sync(namespace, "harbor-credentials")

    def reads() -> list[dict]:
        entries = [json.loads(line) for line in audit.read_text().splitlines() if line]
        found = [e for e in entries if e.get("type") == "response"
                 and e.get("request", {}).get("path") == "secret/data/harbor/main"
                 and "kubernetes" in (e.get("auth", {}).get("display_name") or "")]
        return found if len(found) >= 2 else []

    found = eventually(reads, timeout=30, description="ESO reads in the audit log")
    assert found[-1]["auth"]["metadata"]["service_account_name"] == "external-secrets"
    text = audit.read_text()
    seeded = {p: v for _m, p, v in parse_seed(platform.settings.fixtures_dir / "vault" /
                                              "seed.txt")}
    for value in seeded["harbor/main"].values():
        assert value not in text
    assert "hmac-sha256:" in json.dumps(found[-1]["response"]["data"])
