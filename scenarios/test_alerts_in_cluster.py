"""The spec's alerts with Prometheus and Alertmanager installed from their chart (the
pods backend): Vault and ESO found through Kubernetes service discovery, the spec's
rules loaded (time-scaled by --harness-time-scale), notifications delivered to the
harness's receiver through its in-cluster Service.

VaultDown is driven the runbook's way: the active Vault Pod sealed with `vault operator
seal` inside it (its /v1/sys/metrics answers 503: `up == 0` for that Pod), then unsealed
with the original keys through `kubectl exec`. A dev-mode Vault (dev profile) has no
keys to unseal it with: that test runs on staging/prod."""

from __future__ import annotations

import time

import pytest

from harness import eventually
from harness.rules import check_rules, load_rules, parse_duration

from .helpers import denied_after_sync
from .test_runbook import vault_in_pod

pytestmark = [pytest.mark.portable, pytest.mark.needs("prometheus", "alert-receiver",
                                                      "in-cluster")]


def test_vault_and_eso_are_discovered_in_the_cluster(platform, prometheus, faults):
    pods = sorted(p.metadata.name for p in faults.vault_pods())

    def scraped() -> list[str] | None:
        up = prometheus.query('up{job="vault"} == 1')
        found = sorted(s["metric"].get("instance", "") for s in up)
        return found if found == pods else None

    assert eventually(scraped, timeout=120, description="every Vault Pod scraped") == pods
    eventually(lambda: prometheus.query('up{job="external-secrets"} == 1') or None,
               timeout=120, description="ESO's controller scraped")


def test_a_sealed_vault_pod_fires_vault_down_and_unsealing_resolves_it(
        platform, prometheus, alerts, faults, kube):
    if len(faults.vault_pods()) < 2:
        pytest.skip("the dev profile's single dev-mode Vault cannot be unsealed again")
    rule = next(r for r in load_rules([platform.settings.fixtures_dir / "observability"])
                if r.name == "VaultDown")
    hold = parse_duration(rule.for_) / platform.settings.time_scale
    active = faults.wait_vault_active()
    t0 = time.monotonic()
    vault_in_pod(kube, platform, "operator", "seal", pod=active)
    try:
        alert = alerts.wait_for_alert("VaultDown", "firing", timeout=hold + 120,
                                      instance=active)
        fired_after = time.monotonic() - t0
    finally:
        faults.unseal(active)
    assert alert["labels"]["job"] == "vault"
    assert alert["annotations"] == {"summary": "Vault is down"}
    assert fired_after >= hold, f"fired after {fired_after:.1f}s, before for={hold:.1f}s"
    alerts.wait_for_alert("VaultDown", "resolved", timeout=hold + 120, instance=active)
    faults.wait_vault_active()


def test_the_spec_external_secrets_failure_rule_is_dead_here_too(
        platform, prometheus, eso, vault, vault_store, namespace):
    denied_after_sync(eso, vault, vault_store, namespace)
    eventually(lambda: prometheus.query(
        f'externalsecret_sync_calls_error{{namespace="{namespace}"}} > 0') or None,
        timeout=60, description="the real error metric is > 0 in Prometheus")
    rules = load_rules([platform.settings.fixtures_dir / "observability"])
    verdicts = {v.rule.name: v for v in check_rules(rules, prometheus.live_metric_names())}
    assert verdicts["VaultDown"].status == "ok"
    assert verdicts["ExternalSecretsFailure"].status == "dead"
