"""Faults as Kubernetes operations, for backends where Vault and ESO are pods (kind, an
existing cluster with `faults:` in its endpoints file): a deleted Vault pod does not
stop secret delivery; ESO scaled to zero stops it, and scaling back resumes it. On the
local backend (processes, not pods) these are skipped with that reason; its own
process-level faults are in scenarios/staging/ and test_network_faults.py."""

from __future__ import annotations

import pytest

from harness import consistently

from .helpers import synced_secret

pytestmark = [pytest.mark.portable, pytest.mark.needs("pod-faults")]


def test_a_deleted_vault_pod_does_not_stop_delivery(eso, vault, vault_store, namespace,
                                                    faults):
    key = synced_secret(eso, vault, vault_store, namespace, value="before-delete")
    [first, *_] = faults.vault_pods()
    old_uid = faults.delete_vault_pod(first.metadata.name)
    faults.wait_vault_active()  # the others elect a leader if it was the active one
    vault.kv_put(key, password="after-delete")
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "after-delete", timeout=120)
    faults.wait_vault_pod_replaced(first.metadata.name, old_uid)


def test_eso_scaled_to_zero_stops_delivery_and_scaling_back_resumes_it(
        eso, vault, vault_store, namespace, faults):
    key = synced_secret(eso, vault, vault_store, namespace, value="v1")
    with faults.eso_down():
        vault.kv_put(key, password="v2")
        eso.force_sync(namespace, "app")
        consistently(lambda: eso.secret_value(namespace, "app", "password") == "v1",
                     duration=10, description="no ESO, no delivery")
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "v2", timeout=180)
