"""Network faults between ESO and Vault, through Toxiproxy on the in-cluster address:
2 s of latency is survived; a partition gives error conditions and the metric, then
recovery — with the last good value kept throughout."""

from __future__ import annotations

import time

import yaml

from harness import eventually
from harness.clients.alerts import external_secret_not_ready_rule

from .helpers import synced_secret


def test_two_seconds_of_latency_to_vault_still_syncs(eso, vault, vault_store, namespace,
                                                      faults):
    key = synced_secret(eso, vault, vault_store, namespace, "net", "v1")
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
                                                               namespace, faults, prometheus,
                                                               alerts, tmp_path):
    """Partition: SecretSyncedError, the error metric rises, the (working) not-Ready alert
    fires and reaches the receiver; the Secret keeps its value; after the partition the
    next sync delivers and the alert resolves."""
    rules = tmp_path / "not-ready.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "partition.rules", "rules": [
        external_secret_not_ready_rule(namespace)]}]}))
    prometheus.extra_rule_sources = [rules]
    prometheus.reload()
    try:
        key = synced_secret(eso, vault, vault_store, namespace, "net", "v1")
        errors = eso.metric("externalsecret_sync_calls_error", name="net",
                            namespace=namespace)
        with faults.partition("vault"):
            vault.kv_put(key, password="during-partition")
            eso.force_sync(namespace, "net")
            cond = eso.wait_error(namespace, "net", timeout=60)
            assert cond["reason"] == "SecretSyncedError"
            eventually(lambda: eso.metric("externalsecret_sync_calls_error", name="net",
                                          namespace=namespace) > errors, timeout=30,
                       description="externalsecret_sync_calls_error rises")
            alerts.wait_for_alert("ExternalSecretNotReady", "firing", timeout=90,
                                  namespace=namespace)
            assert eso.secret_value(namespace, "net", "password") == "v1"
        eso.force_sync(namespace, "net")
        eso.wait_value(namespace, "net", "password", "during-partition", timeout=60)
        eso.wait_synced(namespace, "net")
        alerts.wait_for_alert("ExternalSecretNotReady", "resolved", timeout=90,
                              namespace=namespace)
    finally:
        prometheus.extra_rule_sources = []
        prometheus.reload()
