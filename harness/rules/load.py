"""Loading rules: rule files and PrometheusRule manifests, as documents or as Rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError


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
