"""`harness rules check` (against live metrics) and `harness rules test` (promtool)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli.common import emit_json, settings_from


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
        emit_json([_verdict_json(v) for v in verdicts])
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
@click.option("--json", "as_json", is_flag=True,
              help="Print one {group, rule, source, status, detail, seconds} per alert.")
@click.option("--live/--no-live", default=None,
              help="Also check each rule's metrics against the running environment, as "
                   "`rules check` does: a rule nothing can fire is DEAD, not PASSED "
                   "(default: when an environment runs in --state-dir).")
@click.pass_context
def rules_test(ctx: click.Context, files: tuple[Path, ...], junit: Path | None,
               as_json: bool, live: bool | None) -> None:
    """Generate promtool tests proving each alert's exact `for:` (real scale) and run
    them; with a running environment, rules whose metrics nothing exposes are DEAD.
    Exit 1 on a failed or dead rule."""
    from harness.rules import junit_xml
    from harness.rules.runner import load_checked, run_unit_tests

    settings = settings_from(ctx)
    load_checked(settings, list(files))  # bad input is named before anything else
    names = _live_names(settings, live)
    if names is None and not as_json:
        click.echo("(metrics not checked: no running environment; `harness up` first, "
                   "or `harness rules check`, to find dead rules)", err=True)
    results = run_unit_tests(settings, list(files), live=names)
    if as_json:
        emit_json([{"group": r.rule.group, "rule": r.rule.name, "source": r.rule.source,
                    "status": r.status, "detail": r.detail, "seconds": r.seconds}
                   for r in results])
    else:
        for r in results:
            click.echo(f"{r.status.upper():8} {r.rule.group}/{r.rule.name}"
                       + (f": {r.detail}" if r.status != "passed" else ""))
    if junit:
        junit.write_text(junit_xml(results))
        click.echo(f"JUnit: {junit}", err=as_json)  # stdout stays the JSON document
    if any(r.status in ("failed", "dead") for r in results):
        sys.exit(1)


def _live_names(settings: Any, live: bool | None) -> set[str] | None:
    """The running environment's metric names (None: not asked for, or nothing runs
    and --live was not insisted on)."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.backends.local.record import running_profile

    if live is False or (live is None and running_profile(settings.state_dir) is None):
        return None
    return LocalEnvironment(settings).attach().prometheus().live_metric_names()
