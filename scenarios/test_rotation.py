"""Secret lifecycle (generate → store → distribute → use → rotate → dispose): rotation
reaches the Secret; destroying an old version changes nothing; deleting the remote key
is handled as each ExternalSecret's deletionPolicy says."""

from __future__ import annotations

import pytest

from harness import eventually

from .helpers import external_secret

pytestmark = pytest.mark.portable


def with_policy(es: dict, policy: str) -> dict:
    es["spec"]["target"]["deletionPolicy"] = policy
    return es


def test_rotate_destroy_old_version_then_delete_the_remote_key(eso, vault, vault_store,
                                                               namespace):
    kv = vault.client().secrets.kv.v2
    keys = {}
    for policy in ("Retain", "Delete"):
        key = keys[policy] = f"{vault_store['prefix']}/{policy.lower()}"
        vault.kv_put(key, password="generation-1")
        eso.apply_object(with_policy(external_secret(
            f"app-{policy.lower()}", vault_store["store"], key, "1h"), policy), namespace)
        eso.wait_value(namespace, f"app-{policy.lower()}", "password", "generation-1")

    # rotate
    for policy, key in keys.items():
        vault.kv_put(key, password="generation-2")
        eso.force_sync(namespace, f"app-{policy.lower()}")
        eso.wait_value(namespace, f"app-{policy.lower()}", "password", "generation-2")

    # destroy the old version: the current one is untouched
    for policy, key in keys.items():
        kv.destroy_secret_versions(path=key, versions=[1], mount_point="secret")
        eso.force_sync(namespace, f"app-{policy.lower()}")
        eso.wait_synced(namespace, f"app-{policy.lower()}")
        assert eso.secret_value(namespace, f"app-{policy.lower()}", "password") == \
            "generation-2"

    # dispose: delete the key (all versions, metadata) in Vault
    for policy, key in keys.items():
        kv.delete_metadata_and_all_versions(path=key, mount_point="secret")
        eso.force_sync(namespace, f"app-{policy.lower()}")

    # Retain: the Secret keeps its last value and the ExternalSecret reports the error
    cond = eso.wait_error(namespace, "app-retain")
    assert cond["reason"] == "SecretSyncedError"
    assert eso.secret_value(namespace, "app-retain", "password") == "generation-2"

    # Delete: the Secret goes away with the remote key
    def deleted():
        return eso.kube.absent(eso.kube.core.read_namespaced_secret, "app-delete", namespace)

    eventually(deleted, timeout=30, description="deletionPolicy Delete removes the Secret")
    def reported_deleted():
        cond = eso.condition(namespace, "app-delete") or {}
        return (cond.get("reason"), cond.get("message")) == (
            "SecretDeleted", "secret deleted due to DeletionPolicy=Delete")

    eventually(reported_deleted, timeout=30, description="condition SecretDeleted")
