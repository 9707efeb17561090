"""`harness drill list` and `harness drill run NAME`: DR drills with their verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Column, Table

from harness.cli.common import err, out, settings_from, show_event
from harness.runtime.redact import redact
from harness.settings import PROFILES

if TYPE_CHECKING:
    from harness.drills.model import Event

COLORS = {"fault": "red", "restored": "green", "recovery": "yellow", "error": "red"}
"""Event kinds worth a colour on the timeline; the rest are cyan."""


@click.group()
def drill() -> None:
    """DR drills: a fault, recovery as the runbook says, RTO/RPO, a verdict, reports."""


@drill.command("list")
def drill_list() -> None:
    # No docstring on purpose: it would become this command's help text, which stays
    # as it was (empty) while the CLI is restructured.
    from harness.drills import DRILLS

    table = Table("what happens", title="harness drills")
    table.columns.insert(0, Column("drill", no_wrap=True))
    table.columns.insert(1, Column("profiles", no_wrap=True))
    table.columns.insert(2, Column("backends", no_wrap=True))
    table.columns.insert(3, Column("RTO objective", no_wrap=True))
    for d in DRILLS.values():
        rto = " / ".join(f"{d.on(b).objectives.rto_seconds:.0f} s" for b in d.backends
                         if b == "local" or d.on(b).objectives != d.objectives)
        table.add_row(d.name, ", ".join(d.profiles), ", ".join(d.backends), rto,
                      d.description)
    out.print(table)


def _show(e: Event) -> None:
    """One timeline line as it happens: seconds since the drill began, kind, message."""
    mark = {True: " [green]ok[/]", False: " [red]FAILED[/]", None: ""}[e.ok]
    color = COLORS.get(e.kind, "cyan")
    err.print(f"  {e.at:7.2f}s [{color}]{e.kind:<9}[/] {redact(e.message)}{mark}",
              highlight=False)


def _announce(message: str) -> None:
    """Where the drill runs (running environment or its own), before it starts."""
    err.print(message)


@drill.command("run")
@click.argument("name")
@click.option("--backend", type=click.Choice(["local", "pods"]), default="local",
              show_default=True,
              help="local: the platform as processes; pods: its Helm charts as real Pods "
                   "(needs root). On pods the drill uses the pods environment recorded "
                   "running in --state-dir (`harness up --backend pods`) or starts its own "
                   "(staging).")
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Profile of the environment the drill starts when none is running "
                   "(default: the drill's first).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Directory for report.md/json/html + timeline.png "
                   "(default: ./drill-reports/NAME-<UTC time>).")
@click.option("--keep", is_flag=True,
              help="Keep the environment the drill started (default: torn down).")
@click.pass_context
def drill_run(ctx: click.Context, name: str, backend: str, profile: str | None,
              report_dir: Path | None, keep: bool) -> None:
    """Run a drill against the running environment of --state-dir when its profile
    suits the drill; otherwise in a fresh environment of its own. Exit 1 on FAIL."""
    from harness.drills.report import rpo_text
    from harness.drills.runner import run_drill_session

    outcome = run_drill_session(name, settings_from(ctx), profile=profile,
                                report_dir=report_dir, keep=keep, backend=backend,
                                announce=_announce,
                                events=show_event, progress=_show)
    result = outcome.result
    rto = f"{result.rto_seconds:.2f}s" if result.rto_seconds is not None else "n/a"
    color = "green" if result.verdict == "PASS" else "red"
    err.print(f"[{color}]{result.verdict}[/] RTO {rto} (objective "
              f"{result.objectives.rto_seconds:.0f}s), RPO {rpo_text(result)}")
    for reason in result.reasons:
        err.print(f"  [red]-[/] {redact(reason)}", highlight=False)
    err.print(f"reports: {outcome.plan.report_dir}/report.md, report.json, report.html, "
              "timeline.png")
    sys.exit(0 if result.verdict == "PASS" else 1)
