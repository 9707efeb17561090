"""promtool unit tests at real scale: each threshold alert proven to fire after exactly
its `for:`."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.rules.load import Rule
from harness.rules.scaling import format_duration, parse_duration

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
    import time

    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    ran: dict[Path, tuple[bool, str, float]] = {}
    for i, rule in enumerate(r for r in rules if r.is_alert):
        rule_file = workdir / f"{i:02d}-rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [
            {"name": rule.group, "rules": [rule.raw]}]}, sort_keys=False))
        test = promtool_test(rule, rule_file.name)
        if test is None:
            written = companion_test(rule)
            if written is not None:
                results.append(run_written_test(rule, written, promtool, ran))
                continue
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


def companion_test(rule: Rule) -> Path | None:
    """A promtool test file written by hand next to the rule's file — `X.rules.yaml` ->
    `X.rules.test.yaml` — that tests this alert, for expressions the generator cannot
    shape (ratios, two series, increase())."""
    source = Path(rule.source.split(":", 1)[0])
    written = source.with_name(source.name.removesuffix(".yaml").removesuffix(".yml")
                               + ".test.yaml")
    if not written.is_file():
        return None
    cases = [case for test in (yaml.safe_load(written.read_text()) or {}).get("tests", [])
             for case in test.get("alert_rule_test", [])]
    return written if any(c.get("alertname") == rule.name for c in cases) else None


def run_written_test(rule: Rule, written: Path, promtool: str,
                     ran: dict[Path, tuple[bool, str, float]]) -> RuleTestResult:
    """`promtool test rules` on a hand-written test file (once per file): its verdict
    is that of every alert it tests."""
    import time

    if written not in ran:
        t0 = time.monotonic()
        proc = subprocess.run([promtool, "test", "rules", written.name], cwd=written.parent,
                              capture_output=True, text=True, timeout=60)
        ran[written] = (proc.returncode == 0, (proc.stdout + proc.stderr).strip(),
                        time.monotonic() - t0)
    ok, output, seconds = ran[written]
    return RuleTestResult(rule, "passed" if ok else "failed",
                          f"{written.name}: {output}", seconds)


def junit_xml(results: list[RuleTestResult]) -> str:
    from xml.sax.saxutils import escape, quoteattr

    fails = sum(r.status in ("failed", "dead") for r in results)
    skips = sum(r.status == "skipped" for r in results)
    cases = []
    for r in results:
        body = ""
        if r.status in ("failed", "dead"):
            why = "dead: can never fire" if r.status == "dead" else "promtool test failed"
            body = f"<failure message={quoteattr(why)}>{escape(r.detail)}</failure>"
        elif r.status == "skipped":
            body = f"<skipped message={quoteattr(r.detail)}/>"
        cases.append(f'  <testcase classname={quoteattr(r.rule.group)} '
                     f'name={quoteattr(r.rule.name)} time="{r.seconds:.3f}">{body}</testcase>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="promtool rules" '
            f'tests="{len(results)}" failures="{fails}" skipped="{skips}">\n'
            + "\n".join(cases) + "\n</testsuite>\n")
