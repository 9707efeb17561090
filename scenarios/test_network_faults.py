"""Network faults between ESO and Vault, through Toxiproxy on the in-cluster address:
2 s of latency is survived; a partition gives error conditions and the metric, then
recovery — with the last good value kept throughout."""

from __future__ import annotations

import time

from harness import eventually

from .test_refresh_timing import external_secret


def synced(eso, vault, store, namespace, value="v1"):
    key = f"{store['prefix']}/net"
    vault.kv_put(key, password=value)
    eso.apply_object(external_secret("net", store["store"], key, "1h"), namespace)
    eso.wait_value(namespace, "net", "password", value)
    return key


def test_two_seconds_of_latency_to_vault_still_syncs(eso, vault, vault_store, namespace,
                                                      faults):
    key = synced(eso, vault, vault_store, namespace)
    with faults.latency("vault", 2000):
        vault.kv_put(key, password="v2")  # the harness writes directly; ESO goes through
        t0 = time.monotonic()
        eso.force_sync(namespace, "net")
        eso.wait_value(namespace, "net", "password", "v2", timeout=60)
        took = time.monotonic() - t0
    print(f"\nforce-sync through 2 s of latency: {took:.2f}s")
    assert took >= 2.0  # every request to Vault really crossed the delay
    eso.wait_synced(namespace, "net")


def test_a_partition_fails_loudly_keeps_the_value_and_recovers(eso, vault, vault_store,
                                                               namespace, faults):
    key = synced(eso, vault, vault_store, namespace)
    errors = eso.metric("externalsecret_sync_calls_error", name="net", namespace=namespace)
    with faults.partition("vault"):
        vault.kv_put(key, password="during-partition")
        eso.force_sync(namespace, "net")
        cond = eso.wait_error(namespace, "net", timeout=60)
        assert cond["reason"] == "SecretSyncedError"
        eventually(lambda: eso.metric("externalsecret_sync_calls_error", name="net",
                                      namespace=namespace) > errors, timeout=30,
                   description="externalsecret_sync_calls_error rises")
        assert eso.secret_value(namespace, "net", "password") == "v1"
    eso.force_sync(namespace, "net")
    eso.wait_value(namespace, "net", "password", "during-partition", timeout=60)
    eso.wait_synced(namespace, "net")
