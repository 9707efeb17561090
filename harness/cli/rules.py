"""`harness rules check` (against live metrics) and `harness rules test` (promtool)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from harness.cli.common import settings_from


@click.group()
def rules() -> None:
    """Alerting rules: check against live metrics, unit-test with promtool."""


def _verdict_json(v: Any) -> dict[str, Any]:
    """One verdict as `--json` prints it (what CI and the alert scenarios parse)."""
    return {"group": v.rule.group, "rule": v.rule.name, "source": v.rule.source,
            "status": v.status, "missing": v.missing, "closest": v.closest}


def _timing(for_: str | None, scale: float) -> str:
    """E.g. ` [for 5m, live x60: 5s]`: the written `for:` and, when the environment runs
    time-scaled, what it is live, so a reader knows which one a test waits for."""
    from harness.rules import scale_duration

    if not for_:
        return ""
    live = f", live x{scale:g}: {scale_duration(for_, scale)}]" if scale != 1 else "]"
    return f" [for {for_}" + live


@rules.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_check(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Every metric a rule references must exist in a scraped target; exit 1 on dead rules."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.rules.runner import check_live, load_checked

    settings = settings_from(ctx)
    rules = load_checked(settings, list(files))  # a bad file is named before anything runs
    platform = LocalEnvironment(settings).attach()
    check = check_live(platform.prometheus(), platform.settings, rules=rules)
    verdicts = check.verdicts
    if as_json:
        click.echo(json.dumps([_verdict_json(v) for v in verdicts], indent=2))
    else:
        for v in verdicts:
            click.echo(v.line() + _timing(v.rule.for_, check.time_scale))
        counts = {s: sum(v.status == s for v in verdicts)
                  for s in ("ok", "dead", "not-simulated")}
        click.echo(f"{len(verdicts)} rule(s): {counts['ok']} ok, {counts['dead']} dead, "
                   f"{counts['not-simulated']} not simulated "
                   f"({check.live_metrics} live metric names)")
    if check.dead:
        sys.exit(1)


@rules.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Write JUnit XML here (its directory must exist).")
@click.pass_context
def rules_test(ctx: click.Context, files: tuple[Path, ...], junit: Path | None) -> None:
    """Generate promtool tests proving each alert's exact `for:` (real scale) and run them."""
    from harness.rules import junit_xml
    from harness.rules.runner import run_unit_tests

    results = run_unit_tests(settings_from(ctx), list(files))
    for r in results:
        click.echo(f"{r.status.upper():8} {r.rule.group}/{r.rule.name}"
                   + (f": {r.detail}" if r.status != "passed" else ""))
    if junit:
        junit.write_text(junit_xml(results))
        click.echo(f"JUnit: {junit}")
    if any(r.status == "failed" for r in results):
        sys.exit(1)
