"""Time scaling: every duration of a rule divided the same way — `for:`, range windows
`[5m]`, `offset` — so a rule keeps its meaning while a live test takes seconds."""

from __future__ import annotations

import copy
import re
from typing import Any

from harness.errors import HarnessError

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
BASE_SCRAPE = 15.0  # seconds, Prometheus' default scrape interval, before time scaling
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
RANGE = re.compile(r"\[([0-9smhdwy.]+)(?::([0-9smhdwy.]+))?\]")
OFFSET = re.compile(r"\boffset\s+([0-9smhdwy.]+)")


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (`1h30m`, `250ms`; `0` alone, as Prometheus
    allows); anything else is a HarnessError naming the text."""
    if not isinstance(text, str):
        raise HarnessError(f"not a Prometheus duration: {text!r}")
    if text == "0":
        return 0.0
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise HarnessError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
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
