"""Loading rules: rule files and PrometheusRule manifests, as documents or as Rules.

Every rule is checked as Prometheus would check it before anything runs — the shape of
groups and rules, `for:`/`keep_firing_for:`/`interval:` as durations, the expression as
PromQL — so a bad file is named (file, group, rule) by `harness rules check` before it
asks an environment for anything, and by `harness up` before Prometheus refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, InputError
from harness.rules.scaling import parse_duration

GROUP_KEYS = {"name", "interval", "query_offset", "limit", "labels", "rules"}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


class RulesError(InputError):
    """A rule file (or PrometheusRule) is unusable; names the file, group and rule."""


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


def _groups_of(doc: dict[str, Any]) -> Any:
    """The document's rule groups as written (None: not a rule document)."""
    if doc.get("kind") == "PrometheusRule":
        spec = doc.get("spec")
        return spec.get("groups") if isinstance(spec, dict) else None
    return doc.get("groups")


def _is_rules(doc: Any) -> bool:
    """A rule file (`groups:`) or a PrometheusRule; other YAML in a directory is skipped."""
    return isinstance(doc, dict) and (doc.get("kind") == "PrometheusRule" or "groups" in doc)


def _duration_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a duration such as 5m, got {InputError.kind_of(value)}"
    try:
        parse_duration(value)
    except HarnessError:
        return f"{value!r} is not a duration (such as 30s, 5m, 1h30m)"
    return None


def _promql_problem(expr: str) -> str | None:
    import promql_parser

    try:
        promql_parser.parse(expr)
    except Exception as exc:  # noqa: BLE001 - the parser raises plain ValueErrors
        shown = expr if len(expr) <= 60 else expr[:57] + "..."
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"expr {shown!r} is not valid PromQL: {why}"
    return None


def _strings(value: Any) -> bool:
    """labels/annotations: a mapping of names to text (numbers are written as text)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
        for k, v in value.items())


def _unknown_keys(at: str, obj: dict[Any, Any], known: set[str]) -> list[str]:
    """A key Prometheus would refuse, named with the ones it knows."""
    unknown = sorted(str(k) for k in set(obj) - known)
    if not unknown:
        return []
    return [f"{at}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"]


def _rule_problems(rule: Any, group: str, index: int) -> list[str]:
    """Problems of one rule, each starting `group G, rule NAME` (or `rule #N`)."""
    at = f"{group}, rule #{index}"
    if not isinstance(rule, dict):
        return [f"{at}: a rule must be a mapping, got {InputError.kind_of(rule)}"]
    name = rule.get("alert", rule.get("record"))
    if isinstance(name, str) and name:
        at = f"{group}, rule {name}"
    problems = _unknown_keys(at, rule, RULE_KEYS)
    if ("alert" in rule) == ("record" in rule):
        problems.append(f"{at}: needs exactly one of alert: or record:")
    elif not isinstance(name, str) or not name:
        key = "alert" if "alert" in rule else "record"
        problems.append(f"{at}: {key} must be a name, got {InputError.kind_of(name)}")
    expr = rule.get("expr")
    if isinstance(expr, bool) or not isinstance(expr, str | int | float) or expr == "":
        problems.append(f"{at}: expr must be a PromQL expression, got "
                        f"{InputError.kind_of(expr)}")
    else:
        problem = _promql_problem(str(expr))
        if problem:
            problems.append(f"{at}: {problem}")
    for key in ("for", "keep_firing_for"):
        if rule.get(key) is not None:
            problem = _duration_problem(rule[key])
            if problem:
                problems.append(f"{at}: {key}: {problem}")
    for key in ("labels", "annotations"):
        if rule.get(key) is not None and not _strings(rule[key]):
            problems.append(f"{at}: {key} must be a mapping of names to text, got "
                            f"{InputError.kind_of(rule[key])}")
    return problems


def _group_problems(group: Any, at: str) -> list[str]:
    """Problems of one group and its rules (`at`: `group #N` until its name is known)."""
    if not isinstance(group, dict):
        return [f"{at}: a group must be a mapping, got {InputError.kind_of(group)}"]
    name = group.get("name")
    if not isinstance(name, str) or not name:
        return [f"{at}: a group needs a name, got {InputError.kind_of(name)}"]
    at = f"group {name}"
    problems = _unknown_keys(at, group, GROUP_KEYS)
    if group.get("interval") is not None:
        problem = _duration_problem(group["interval"])
        if problem:
            problems.append(f"{at}: interval: {problem}")
    rules = group.get("rules")
    if rules is not None and not isinstance(rules, list):
        problems.append(f"{at}: rules must be a list, got {InputError.kind_of(rules)}")
    else:
        for i, rule in enumerate(rules or []):
            problems += _rule_problems(rule, at, i + 1)
    return problems


def check_document(source: str, doc: dict[str, Any]) -> None:
    """Raise RulesError naming the source, group and rule of every problem of one rule
    document (rule file or PrometheusRule); Prometheus would refuse any of them."""
    groups = _groups_of(doc)
    where = "spec.groups" if doc.get("kind") == "PrometheusRule" else "groups"
    if not isinstance(groups, list):
        problems = [f"{where} must be a list of rule groups, got {InputError.kind_of(groups)}"]
    else:
        problems = [p for i, g in enumerate(groups)
                    for p in _group_problems(g, f"group #{i + 1}")]
    if len(problems) == 1:
        raise RulesError(f"{source}: {problems[0]}")
    if problems:
        raise RulesError(f"{source}: {len(problems)} problems:\n  " + "\n  ".join(problems))


def load_rule_documents(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(source, groups-document) for rule files and PrometheusRule manifests, each
    checked (see `check_document`); YAML in a directory that holds no rules is skipped."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for f in files:
            for doc in RulesError.load_yaml(f, str(f)):
                if _is_rules(doc):
                    check_document(str(f), doc)
                    out.append((str(f), {"groups": _groups_of(doc)}))
    return out


def load_rules(paths: list[Path]) -> list[Rule]:
    rules = rules_from(load_rule_documents(paths))
    if not rules:
        raise RulesError(f"no rules found in {', '.join(map(str, paths))} (a rule file "
                         "has `groups:`, a PrometheusRule `spec.groups:`, each group "
                         "`rules:`)")
    return rules


def _text(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (mapping or {}).items()}


def rules_from(documents: list[tuple[str, dict[str, Any]]]) -> list[Rule]:
    """Rules of (source, rule-file or PrometheusRule object) pairs, each document checked
    first (see `check_document`)."""
    rules = []
    for source, raw_doc in documents:
        check_document(source, raw_doc)
        for group in _groups_of(raw_doc):
            for raw in group.get("rules") or []:
                rules.append(Rule(group=group["name"],
                                  name=raw.get("alert") or raw.get("record"),
                                  expr=str(raw["expr"]), source=source, for_=raw.get("for"),
                                  labels=_text(raw.get("labels")),
                                  annotations=_text(raw.get("annotations")), raw=raw))
    return rules
