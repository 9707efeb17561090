"""Alerting rules: load them (rule files or PrometheusRule manifests), scale their time,
check them against the metrics the live environment really exposes, and prove each
alert's `for:` with promtool. One module each: `load`, `scaling`, `check`, `promtool`;
`runner` holds what the `harness rules` commands call."""

from __future__ import annotations

from harness.rules.check import (
    NOT_SIMULATED,
    Verdict,
    check_rules,
    metric_names,
)
from harness.rules.load import (
    Rule,
    load_rule_documents,
    load_rules,
    rules_from,
)
from harness.rules.promtool import (
    MATCHER,
    SIMPLE,
    RuleTestResult,
    junit_xml,
    promtool_test,
    run_promtool_tests,
)
from harness.rules.scaling import (
    BASE_SCRAPE,
    DURATION,
    OFFSET,
    RANGE,
    UNITS,
    format_duration,
    parse_duration,
    scale_duration,
    scale_expr,
    scaled_groups,
)

__all__ = ["BASE_SCRAPE", "DURATION", "MATCHER", "NOT_SIMULATED", "OFFSET", "RANGE", "SIMPLE",
           "UNITS", "Rule", "RuleTestResult", "Verdict", "check_rules", "format_duration",
           "junit_xml",
           "load_rule_documents", "load_rules", "metric_names", "parse_duration",
           "promtool_test", "rules_from", "run_promtool_tests", "scale_duration",
           "scale_expr", "scaled_groups"]
