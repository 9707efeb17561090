"""Rules: time scaling, metric extraction, verdicts, promtool tests at real scale."""

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.rules import (
    check_rules,
    load_rules,
    metric_names,
    promtool_test,
    run_promtool_tests,
    scale_duration,
    scale_expr,
    scaled_groups,
)
from harness.settings import Settings
from harness.toolchain import Toolchain

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "observability"


def test_time_scaling_keeps_every_duration_proportional():
    assert scale_duration("5m", 60) == "5s"
    assert scale_duration("2m", 60) == "2s"
    assert scale_duration("1h30m", 60) == "90s"
    assert scale_duration("15s", 60) == "250ms"
    assert scale_expr("rate(x[5m]) > 0 unless y[10m:1m] offset 1h", 60) == \
        "rate(x[5s]) > 0 unless y[10s:1s] offset 60s"
    doc = {"groups": [{"name": "g", "interval": "1m", "rules": [
        {"alert": "A", "expr": "sum(rate(a[5m])) > 1", "for": "10m"}]}]}
    out = scaled_groups(doc, 60)
    assert out["groups"][0]["interval"] == "1s"
    assert out["groups"][0]["rules"][0] == {"alert": "A", "expr": "sum(rate(a[5s])) > 1",
                                            "for": "10s"}
    assert doc["groups"][0]["rules"][0]["for"] == "10m"  # the original is untouched
    with pytest.raises(HarnessError, match="not a Prometheus duration"):
        scale_duration("5 minutes", 60)


def test_metric_names_come_from_the_promql_parser():
    assert metric_names('up{job="vault"} == 0') == {"up"}
    assert metric_names('sum by (ns) (rate(a_total[5m])) / on() group_left b '
                        '+ {__name__="c"}') == {"a_total", "b", "c"}
    with pytest.raises(HarnessError, match="cannot parse PromQL"):
        metric_names("sum(")


def test_verdicts_dead_not_simulated_and_ok(tmp_path):
    rules = load_rules([SPEC])
    live = {"up", "externalsecret_sync_calls_error", "externalsecret_sync_calls_total"}
    verdicts = {v.rule.name: v for v in check_rules(rules, live)}
    assert verdicts["VaultDown"].status == "ok"
    dead = verdicts["ExternalSecretsFailure"]
    assert dead.status == "dead"
    assert dead.closest["external_secrets_sync_calls_error"][0] == \
        "externalsecret_sync_calls_error"
    assert "closest: externalsecret_sync_calls_error" in dead.line()
    node = tmp_path / "node.yaml"
    node.write_text("groups:\n- name: n\n  rules:\n  - alert: NodeDown\n"
                    "    expr: node_load1 > 4\n")
    assert check_rules(load_rules([node]), live)[0].status == "not-simulated"


def test_prometheusrule_manifests_are_read_like_rule_files(tmp_path):
    f = tmp_path / "pr.yaml"
    f.write_text("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"
                 "metadata: {name: x}\nspec:\n  groups:\n  - name: g\n    rules:\n"
                 "    - alert: A\n      expr: up == 0\n      for: 1m\n")
    [rule] = load_rules([f])
    assert (rule.group, rule.name, rule.for_) == ("g", "A", "1m")


def test_generated_promtool_test_pins_exact_for_semantics():
    rule = next(r for r in load_rules([SPEC]) if r.name == "VaultDown")
    test = promtool_test(rule, "rules.yml")
    cases = test["tests"][0]["alert_rule_test"]
    assert [(c["eval_time"], c["exp_alerts"] == []) for c in cases] == [
        ("299s", True), ("300s", False)]
    assert test["tests"][0]["input_series"][0]["series"] == 'up{job="vault"}'


@pytest.fixture(scope="module")
def promtool():
    return str(Toolchain(Settings().cache_dir).binary("prometheus", "promtool"))


def test_promtool_proves_the_spec_rules_and_catches_a_changed_for(promtool, tmp_path):
    results = run_promtool_tests(load_rules([SPEC]), tmp_path / "ok", promtool)
    assert [(r.rule.name, r.status) for r in results] == [
        ("VaultDown", "passed"), ("ExternalSecretsFailure", "passed")]
    # A rule whose `for:` is not what the test expects must fail promtool, not pass.
    rule = next(r for r in load_rules([SPEC]) if r.name == "VaultDown")
    test = promtool_test(rule, "rules.yml")
    rule.raw = {**rule.raw, "for": "6m"}
    work = tmp_path / "changed"
    work.mkdir()
    import yaml

    (work / "rules.yml").write_text(yaml.safe_dump({"groups": [
        {"name": rule.group, "rules": [rule.raw]}]}))
    (work / "t.yml").write_text(yaml.safe_dump(test))
    import subprocess

    proc = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=work,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-02T04:00:00.123456789Z", 1796184000.123456),
    ("2026-12-02T05:00:00.12+01:00", 1796184000.12),
    ("2026-12-02T03:00:00.5-01:00", 1796184000.5),
    ("2026-12-02T04:00:00Z", 1796184000.0),
    ("", 0.0),
])
def test_a_targets_last_scrape_is_read_in_its_own_zone(text, expected):
    """Prometheus writes lastScrape in its local zone, with nanoseconds."""
    from harness.clients.prometheus import scraped_at

    assert scraped_at(text) == pytest.approx(expected)
