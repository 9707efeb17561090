"""The spec's alerts against real Prometheus + Alertmanager: do they fire when what they
watch breaks, reach a receiver, resolve — and are they alive at all?"""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from harness import eventually
from harness.clients.alerts import external_secret_not_ready_rule
from harness.clients.eso import set_store_access
from harness.rules import check_rules, load_rules, parse_duration

from .helpers import denied_after_sync, external_secret


def scaled_for(platform, rule_name: str) -> float:
    rule = next(r for r in load_rules([platform.settings.fixtures_dir / "observability"])
                if r.name == rule_name)
    return parse_duration(rule.for_) / platform.settings.time_scale


def test_vault_down_fires_after_its_scaled_for_and_resolves(platform, prometheus, alerts):
    hold = scaled_for(platform, "VaultDown")  # 5m / time scale
    vault = platform.process("vault")
    t0 = time.monotonic()
    vault.pause()  # Vault stops answering: the scrape fails, up{job="vault"} == 0
    try:
        alert = alerts.wait_for_alert("VaultDown", "firing", timeout=hold + 30, job="vault")
        fired_after = time.monotonic() - t0
    finally:
        vault.resume()
    assert alert["annotations"] == {"summary": "Vault is down"}
    assert alert["labels"]["job"] == "vault" and alert["labels"]["alertname"] == "VaultDown"
    assert fired_after >= hold, f"fired after {fired_after:.1f}s, before for={hold:.1f}s"
    print(f"\nVaultDown: for {hold:.1f}s (5m / {platform.settings.time_scale:g}), delivered "
          f"{fired_after:.1f}s after the fault (overhead {fired_after - hold:.1f}s)")
    alerts.wait_for_alert("VaultDown", "resolved", timeout=60, job="vault")


def test_the_spec_external_secrets_failure_rule_is_dead(platform, prometheus, eso, vault,
                                                        vault_store, namespace):
    """With ESO really failing, the spec's rule still cannot fire: it names
    external_secrets_sync_calls_error, ESO exposes externalsecret_sync_calls_error."""
    denied_after_sync(eso, vault, vault_store, namespace)
    eventually(lambda: prometheus.query(
        f'externalsecret_sync_calls_error{{namespace="{namespace}"}} > 0') or None, timeout=30,
        description="the real error metric is > 0 in Prometheus")
    rules = load_rules([platform.settings.fixtures_dir / "observability"])
    verdicts = {v.rule.name: v for v in check_rules(rules, prometheus.live_metric_names())}
    assert verdicts["VaultDown"].status == "ok"
    dead = verdicts["ExternalSecretsFailure"]
    assert dead.status == "dead"
    assert dead.missing == ["external_secrets_sync_calls_error"]
    assert "externalsecret_sync_calls_error" in dead.closest["external_secrets_sync_calls_error"]
    assert prometheus.query("external_secrets_sync_calls_error") == []


def test_external_secrets_failure_fixed_two_ways(platform, prometheus, alerts, eso, vault,
                                                vault_store, namespace, tmp_path):
    """Revoke ESO's policy, then restore it, under two repairs of the spec's rule:
    - the metric name fixed (`externalsecret_sync_calls_error > 0`): fires, but as a
      counter it never drops back, so the alert never resolves — a second design flaw;
    - ESO's Ready condition gauge: fires while failing, resolves once synced again."""
    sel = f'namespace="{namespace}"'
    corrected = {"groups": [{"name": "corrected.rules", "rules": [
        {"alert": "ExternalSecretsFailureRenamed", "for": "2m",
         "expr": f"externalsecret_sync_calls_error{{{sel}}} > 0",
         "labels": {"severity": "warning"}},
        external_secret_not_ready_rule(namespace),
    ]}]}
    rules_file = tmp_path / "corrected.rules.yaml"
    rules_file.write_text(yaml.safe_dump(corrected))
    prometheus.extra_rule_sources = [rules_file]
    prometheus.reload()
    try:
        key = f"{vault_store['prefix']}/app"
        vault.kv_put(key, password="v1")
        eso.apply_object(external_secret("app", vault_store["store"], key, "5s"), namespace)
        eso.wait_synced(namespace, "app")
        set_store_access(vault, vault_store, allowed=False)
        for name in ("ExternalSecretNotReady", "ExternalSecretsFailureRenamed"):
            alert = alerts.wait_for_alert(name, "firing", timeout=90, namespace=namespace)
            assert alert["labels"]["severity"] == "warning"
        set_store_access(vault, vault_store, allowed=True)
        eso.wait_synced(namespace, "app", timeout=60)
        resolved = alerts.wait_for_alert("ExternalSecretNotReady", "resolved", timeout=90,
                                         namespace=namespace)
        assert resolved["annotations"]["summary"] == "ExternalSecret app is not Ready"
        still = [a for a in prometheus.alerts()
                 if a["labels"]["alertname"] == "ExternalSecretsFailureRenamed"]
        assert [a["state"] for a in still] == ["firing"]
    finally:
        prometheus.extra_rule_sources = []
        prometheus.reload()


def test_amtool_routes_the_spec_alerts_to_the_harness_receiver(platform):
    am = platform.component("alertmanager")
    amtool = str(platform.toolchain.binary("alertmanager", "amtool"))
    for labels in (["alertname=VaultDown", "job=vault"],
                   ["alertname=ExternalSecretsFailure", "severity=critical"]):
        out = subprocess.run([amtool, "config", "routes", "test",
                              f"--config.file={am.config_file}", "--verify.receivers=harness",
                              *labels], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.strip() == "harness"


def test_rules_check_cli_reports_per_rule_and_fails_on_dead(platform):
    import os
    import sys

    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.state.root),
           "HERACLES_REGISTRY_DIR": str(platform.settings.registry_dir)}
    res = subprocess.run([sys.executable, "-m", "harness.cli", "rules", "check", "--json",
                          str(platform.settings.fixtures_dir / "observability")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res.stderr
    verdicts = {v["rule"]: v["status"] for v in json.loads(res.stdout)}
    assert verdicts == {"VaultDown": "ok", "ExternalSecretsFailure": "dead"}


def test_rules_test_agrees_with_rules_check_on_a_dead_rule(platform):
    """promtool alone passes ExternalSecretsFailure (its test writes the series itself);
    against the running environment `rules test` says DEAD, as `rules check` does."""
    import os
    import sys

    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.state.root),
           "HERACLES_REGISTRY_DIR": str(platform.settings.registry_dir)}
    rules = str(platform.settings.fixtures_dir / "observability")

    def test(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", "rules", "test", "--json",
                               *flags, rules], env=env, capture_output=True, text=True,
                              timeout=120)

    res = test()
    assert res.returncode == 1, res.stderr
    status = {r["rule"]: r for r in json.loads(res.stdout)}
    assert status["ExternalSecretsFailure"]["status"] == "dead"
    assert "can never fire" in status["ExternalSecretsFailure"]["detail"]
    assert status["VaultDown"]["status"] == "passed"
    offline = test("--no-live")  # promtool alone: the logic is right
    assert offline.returncode == 0, offline.stderr
    assert {r["status"] for r in json.loads(offline.stdout)} == {"passed"}


def test_applied_prometheusrules_become_scaled_prometheus_rules(platform, prometheus, kube):
    """Spec troubleshooting #1 in miniature: without the Prometheus Operator CRDs a
    PrometheusRule cannot even be applied; with them (installed from the toolchain) it
    is, and Prometheus evaluates it — time-scaled — next to the rule files."""
    import os
    import sys

    manifest = platform.settings.fixtures_dir / "gitops" / "observability" / \
        "vault-prometheusrule.yaml"
    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.state.root),
           "HERACLES_REGISTRY_DIR": str(platform.settings.registry_dir)}

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    crd_present = kube.kubectl("get", "crd", "prometheusrules.monitoring.coreos.com",
                               check=False).returncode == 0
    if not crd_present:
        refused = harness("apply", str(manifest))
        assert refused.returncode == 2
        assert "the CRD for group monitoring.coreos.com is not installed" in refused.stderr
    installed = harness("crds", "install", "prometheus-operator")
    assert installed.returncode == 0, installed.stderr
    for crd in ("servicemonitors", "prometheusrules", "podmonitors"):
        kube.kubectl("get", "crd", f"{crd}.monitoring.coreos.com")
    applied = harness("apply", str(manifest))
    assert applied.returncode == 0, applied.stderr

    def loaded():
        from harness.runtime.probes import http_get

        _s, body = http_get(f"{prometheus.address}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        return [g for g in groups if g["file"].endswith("vault-rules.yml")] or None

    [group] = eventually(loaded, timeout=30, description="PrometheusRule loaded")
    durations = {r["name"]: r["duration"] for r in group["rules"]}
    scale = platform.settings.time_scale
    assert durations == {"VaultDown": 300 / scale, "ExternalSecretsFailure": 120 / scale}
    verdicts = {v.rule.name: v.status for v in check_rules(
        load_rules([manifest]), prometheus.live_metric_names())}
    assert verdicts == {"VaultDown": "ok", "ExternalSecretsFailure": "dead"}
