"""Alerting rules: load them (rule files or PrometheusRule manifests), scale their time,
and check them against the metrics the live environment really exposes.

Time scaling divides every duration the same way — `for:`, range windows `[5m]`,
`offset` — so a rule keeps its meaning while a live test takes seconds instead of
minutes; reports show both the original and the scaled value.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
RANGE = re.compile(r"\[([0-9smhdwy.]+)(?::([0-9smhdwy.]+))?\]")
OFFSET = re.compile(r"\boffset\s+([0-9smhdwy.]+)")

# Metrics of components this environment does not run: never "dead", "not simulated".
NOT_SIMULATED = ("node_", "kubelet_", "container_", "machine_", "kube_", "cadvisor_",
                 "process_cpu", "prober_", "kubeproxy_", "coredns_", "nginx_", "pg_",
                 "redis_", "argocd_")


def parse_duration(text: str) -> float:
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise HarnessError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scale_duration(text: str, factor: float) -> str:
    return format_duration(parse_duration(text) / factor)


def scale_expr(expr: str, factor: float) -> str:
    def rng(m: re.Match[str]) -> str:
        out = "[" + scale_duration(m.group(1), factor)
        if m.group(2):
            out += ":" + scale_duration(m.group(2), factor)
        return out + "]"

    expr = RANGE.sub(rng, expr)
    return OFFSET.sub(lambda m: "offset " + scale_duration(m.group(1), factor), expr)


@dataclass
class Rule:
    group: str
    name: str  # alert or record name
    expr: str
    source: str
    for_: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_alert(self) -> bool:
        return "alert" in self.raw


def _groups_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") == "PrometheusRule":
        return list(doc.get("spec", {}).get("groups", []))
    return list(doc.get("groups", []))


def load_rule_documents(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(source, groups-document) for rule files and PrometheusRule manifests."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for f in files:
            try:
                docs = list(yaml.safe_load_all(f.read_text()))
            except (OSError, yaml.YAMLError) as exc:
                raise HarnessError(f"{f}: cannot read rules: {exc}") from exc
            for doc in docs:
                if isinstance(doc, dict) and _groups_of(doc):
                    out.append((str(f), {"groups": _groups_of(doc)}))
    return out


def load_rules(paths: list[Path]) -> list[Rule]:
    rules = rules_from(load_rule_documents(paths))
    if not rules:
        raise HarnessError(f"no rules found in {', '.join(map(str, paths))}")
    return rules


def rules_from(documents: list[tuple[str, dict[str, Any]]]) -> list[Rule]:
    """Rules of (source, rule-file or PrometheusRule object) pairs."""
    rules = []
    for source, raw_doc in documents:
        for group in _groups_of(raw_doc):
            for raw in group.get("rules", []):
                rules.append(Rule(group=group.get("name", "?"),
                                  name=raw.get("alert") or raw.get("record", "?"),
                                  expr=str(raw.get("expr", "")), source=source,
                                  for_=raw.get("for"), labels=raw.get("labels") or {},
                                  annotations=raw.get("annotations") or {}, raw=raw))
    return rules


def scaled_groups(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a rule-file document with every duration divided by `factor`."""
    out = copy.deepcopy(doc)
    for group in out["groups"]:
        if "interval" in group:
            group["interval"] = scale_duration(group["interval"], factor)
        for rule in group.get("rules", []):
            rule["expr"] = scale_expr(str(rule["expr"]), factor)
            if rule.get("for"):
                rule["for"] = scale_duration(rule["for"], factor)
            if rule.get("keep_firing_for"):
                rule["keep_firing_for"] = scale_duration(rule["keep_firing_for"], factor)
    return out


def metric_names(expr: str) -> set[str]:
    """Every metric name an expression selects (via the PromQL parser)."""
    import promql_parser

    try:
        ast = promql_parser.parse(expr)
    except Exception as exc:
        raise HarnessError(f"cannot parse PromQL {expr!r}: {exc}") from exc
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in getattr(node.matchers, "matchers", []) or []:
                if m.name == "__name__":
                    names.add(m.value)

    promql_parser.walk(ast, lambda n: visit(n))
    return names


@dataclass
class Verdict:
    rule: Rule
    status: str  # ok | dead | not-simulated
    missing: list[str] = field(default_factory=list)
    closest: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        head = f"{self.status.upper():14} {self.rule.group}/{self.rule.name} ({self.rule.source})"
        if self.status == "dead":
            hints = "; ".join(f"{m} (closest: {', '.join(self.closest[m]) or 'none'})"
                              for m in self.missing)
            return f"{head}: metric not exposed by any target: {hints}"
        if self.status == "not-simulated":
            return f"{head}: from components this environment does not run: " \
                   f"{', '.join(self.missing)}"
        return head


def check_rules(rules: list[Rule], live: set[str]) -> list[Verdict]:
    verdicts = []
    for rule in rules:
        missing = sorted(n for n in metric_names(rule.expr) if n not in live)
        if not missing:
            verdicts.append(Verdict(rule, "ok"))
            continue
        dead = [m for m in missing if not m.startswith(NOT_SIMULATED)]
        if dead:
            verdicts.append(Verdict(rule, "dead", dead, {
                m: difflib.get_close_matches(m, sorted(live), n=3, cutoff=0.6) for m in dead}))
        else:
            verdicts.append(Verdict(rule, "not-simulated", missing))
    return verdicts


# ---- promtool unit tests at real scale ------------------------------------------------
SIMPLE = re.compile(r"^\s*(?P<sel>[A-Za-z_:][\w:]*(?:\{[^}]*\})?)\s*"
                    r"(?P<op>==|!=|>=|<=|>|<)\s*(?P<num>-?\d+(?:\.\d+)?)\s*$")
MATCHER = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _satisfying(op: str, num: float) -> float:
    return {"==": num, "!=": num + 1, ">": num + 1, ">=": num, "<": num - 1,
            "<=": num}[op]


def promtool_test(rule: Rule, rule_file: str) -> dict[str, Any] | None:
    """A promtool test proving the exact `for:` semantics of a threshold alert
    (`selector OP number`): not firing one second before `for`, firing at `for`.
    None when the expression has another shape (reported, not guessed)."""
    m = SIMPLE.match(rule.expr)
    if not rule.is_alert or not m:
        return None
    name = m.group("sel").split("{", 1)[0]
    labels = dict(MATCHER.findall(m.group("sel")))
    value = _satisfying(m.group("op"), float(m.group("num")))
    hold = parse_duration(rule.for_) if rule.for_ else 0.0
    series = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
                     if labels else "")
    minutes = int(hold // 60) + 3
    alert_labels = {**labels, **{k: str(v) for k, v in rule.labels.items()}}
    exp: dict[str, dict[str, str]] = {"exp_labels": alert_labels}
    if rule.annotations:
        exp["exp_annotations"] = {k: str(v) for k, v in rule.annotations.items()}
    cases: list[dict[str, Any]] = []
    if hold >= 1:
        cases.append({"eval_time": format_duration(hold - 1), "alertname": rule.name,
                      "exp_alerts": []})
    cases.append({"eval_time": format_duration(hold), "alertname": rule.name,
                  "exp_alerts": [exp]})
    return {"rule_files": [rule_file], "evaluation_interval": "1s", "tests": [{
        "name": f"{rule.name} fires at for={rule.for_ or '0s'}, not a second before",
        "interval": "1s",
        "input_series": [{"series": series, "values": f"{value:g}x{minutes * 60}"}],
        "alert_rule_test": cases}]}


@dataclass
class RuleTestResult:
    rule: Rule
    status: str  # passed | failed | skipped
    detail: str = ""
    seconds: float = 0.0


def run_promtool_tests(rules: list[Rule], workdir: Path, promtool: str) -> list[RuleTestResult]:
    import subprocess
    import time

    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, rule in enumerate(r for r in rules if r.is_alert):
        rule_file = workdir / f"{i:02d}-rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [
            {"name": rule.group, "rules": [rule.raw]}]}, sort_keys=False))
        test = promtool_test(rule, rule_file.name)
        if test is None:
            results.append(RuleTestResult(rule, "skipped", f"expression shape not supported "
                                                           f"for generation: {rule.expr}"))
            continue
        test_file = workdir / f"{i:02d}-test.yml"
        test_file.write_text(yaml.safe_dump(test, sort_keys=False))
        t0 = time.monotonic()
        proc = subprocess.run([promtool, "test", "rules", test_file.name], cwd=workdir,
                              capture_output=True, text=True, timeout=60)
        results.append(RuleTestResult(
            rule, "passed" if proc.returncode == 0 else "failed",
            (proc.stdout + proc.stderr).strip(), time.monotonic() - t0))
    return results


def junit_xml(results: list[RuleTestResult]) -> str:
    from xml.sax.saxutils import escape, quoteattr

    fails = sum(r.status == "failed" for r in results)
    skips = sum(r.status == "skipped" for r in results)
    cases = []
    for r in results:
        body = ""
        if r.status == "failed":
            body = f"<failure message={quoteattr('promtool test failed')}>" \
                   f"{escape(r.detail)}</failure>"
        elif r.status == "skipped":
            body = f"<skipped message={quoteattr(r.detail)}/>"
        cases.append(f'  <testcase classname={quoteattr(r.rule.group)} '
                     f'name={quoteattr(r.rule.name)} time="{r.seconds:.3f}">{body}</testcase>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="promtool rules" '
            f'tests="{len(results)}" failures="{fails}" skipped="{skips}">\n'
            + "\n".join(cases) + "\n</testsuite>\n")
