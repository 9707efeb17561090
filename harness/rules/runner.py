"""`harness rules check` and `harness rules test` as library calls: which rules (the
given files, else the fixtures' observability rules), against what (the live metric
names of the running Prometheus, or promtool from the toolchain), with what result.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.rules import (
    Rule,
    RuleTestResult,
    Verdict,
    check_rules,
    load_rules,
    run_promtool_tests,
)
from harness.settings import Settings


class LiveMetrics(Protocol):
    """What the check needs of a running Prometheus (any backend's)."""

    def live_metric_names(self) -> set[str]: ...


def rule_paths(settings: Settings, files: list[Path] | None = None) -> list[Path]:
    """The files asked for, or the platform's own rules (fixtures/observability) so a
    bare `harness rules check` checks what the environment loaded."""
    return list(files) if files else [settings.fixtures_dir / "observability"]


@dataclass
class LiveCheck:
    """Verdicts of every rule against the metrics the environment really exposes."""

    verdicts: list[Verdict]
    live_metrics: int  # how many metric names the scraped targets expose
    time_scale: float  # of the environment: its live `for:` is the written one / scale

    @property
    def dead(self) -> bool:
        """A rule references a metric no target exposes: it can never fire."""
        return any(v.status == "dead" for v in self.verdicts)


def load_checked(settings: Settings, files: list[Path] | None = None) -> list[Rule]:
    """The rules of `rule_paths`, each checked as Prometheus would (a bad file raises
    RulesError naming file, group and rule). Commands call this before they ask an
    environment for anything, so bad input is named first, whatever runs."""
    return load_rules(rule_paths(settings, files))


def check_live(prometheus: LiveMetrics, settings: Settings,
               files: list[Path] | None = None, *,
               rules: list[Rule] | None = None) -> LiveCheck:
    """Check rules (`rules` when already loaded, else those of `rule_paths`) against the
    live metric names of the running environment's Prometheus; `settings` are the
    environment's (its time scale)."""
    if rules is None:
        rules = load_checked(settings, files)
    live = prometheus.live_metric_names()
    verdicts = check_rules(rules, live)
    return LiveCheck(verdicts=verdicts, live_metrics=len(live),
                     time_scale=settings.time_scale)


def run_unit_tests(settings: Settings, files: list[Path] | None = None,
                   live: set[str] | None = None) -> list[RuleTestResult]:
    """Generate a promtool test per threshold alert proving its exact `for:` (real scale,
    no environment needed) and run them with the toolchain's promtool.

    promtool feeds the rule the series its test writes, so it passes a rule whose metric
    nothing exposes. Given the `live` metric names of a running environment, such a rule
    is reported "dead", as `rules check` reports it: its logic is right, it never fires."""
    from harness.toolchain import Toolchain

    rules = load_checked(settings, files)  # bad input first, then the missing binary
    promtool = str(Toolchain(settings.cache_dir).binary("prometheus", "promtool"))
    with tempfile.TemporaryDirectory(prefix="heracles-promtool-") as tmp:
        results = run_promtool_tests(rules, Path(tmp), promtool)
    if live is None:
        return results
    dead = {(v.rule.group, v.rule.name): v for v in check_rules(rules, live)
            if v.status == "dead"}
    for r in results:
        if (v := dead.get((r.rule.group, r.rule.name))) is not None:
            r.detail = (f"promtool {r.status}, but the rule can never fire: "
                        f"{v.line().split(': ', 1)[-1]}")
            r.status = "dead"
    return results
