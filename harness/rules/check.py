"""Checking rules against the metrics the live environment really exposes: a rule
whose metric no target has can never fire ("dead")."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessError
from harness.rules.load import Rule

# Metrics of components this environment does not run: never "dead", "not simulated".
NOT_SIMULATED = ("node_", "kubelet_", "container_", "machine_", "kube_", "cadvisor_",
                 "process_cpu", "prober_", "kubeproxy_", "coredns_", "nginx_", "pg_",
                 "redis_", "argocd_")


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
        try:
            names = metric_names(rule.expr)
        except HarnessError as exc:  # a Rule made in code, not loaded (loading checks)
            raise HarnessError(f"{rule.source}: group {rule.group}, rule {rule.name}: "
                               f"{exc}") from None
        missing = sorted(n for n in names if n not in live)
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
