"""`harness drill list` and `harness drill run NAME`: DR drills with their verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Column, Table

from harness.cli.common import emit_json, err, out, settings_from, show_event
from harness.runtime.redact import redact
from harness.settings import PROFILES

if TYPE_CHECKING:
    from harness.drills.model import Event

COLORS = {"fault": "red", "restored": "green", "recovery": "yellow", "error": "red"}
"""Event kinds worth a colour on the timeline; the rest are cyan."""


@click.group()
def drill() -> None:
    """DR drills: a fault, recovery as the runbook says, RTO/RPO, a verdict, reports."""


BACKEND_HELP = ("local: the platform as processes; pods: its Helm charts as real Pods "
                "(needs root); existing: the cluster of an endpoints file (--config).")
CONFIG_OPTION = click.option(
    "--config", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="The existing backend's endpoints file (`harness backend export-config` writes "
         "one); implies --backend existing.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True,
                           help="A JSON document on stdout (progress stays on stderr).")


def _backend_of(backend: str | None, config: Path | None) -> str | None:
    """--config alone means --backend existing; --config with another backend is refused."""
    from harness.errors import HarnessError

    if config is not None and backend not in (None, "existing"):
        raise HarnessError(f"--config is the existing backend's endpoints file; "
                           f"not for --backend {backend}")
    return "existing" if config is not None else backend


@drill.command("list")
@click.option("--backend", type=click.Choice(["local", "pods", "existing"]), default=None,
              help="Say which drills can run there (existing: from --config's "
                   "capabilities). " + BACKEND_HELP)
@CONFIG_OPTION
@JSON_OPTION
def drill_list(backend: str | None, config: Path | None, as_json: bool) -> None:
    """The drills: what each does, its profiles, the backends it has a version for and
    what each version needs; with --backend/--config, whether it can run there."""
    from harness.drills import DRILLS
    from harness.drills.runner import backend_capabilities, drill_catalog

    backend = _backend_of(backend, config)
    have, cfg = backend_capabilities(backend, config)
    listing = drill_catalog(backend, have, cfg)
    if as_json:
        emit_json({"backend": backend, "config": str(cfg.source) if cfg else None,
                   "capabilities": sorted(have) if have is not None else None,
                   "drills": listing})
        return
    title = "harness drills" if backend is None else (
        f"harness drills on the {backend} backend"
        + (f" of {cfg.source} (capabilities: {', '.join(sorted(have or ())) or 'none'})"
           if cfg else ""))
    table = Table(Column("what happens (and what each backend's version needs)",
                         min_width=24), title=title)
    table.columns.insert(0, Column("drill", no_wrap=True))
    if backend is not None:
        table.columns.insert(1, Column(f"on {backend}", min_width=12))
    table.columns.insert(len(table.columns) - 1, Column("profiles", min_width=7))
    table.columns.insert(len(table.columns) - 1, Column("backends", min_width=11))
    table.columns.insert(len(table.columns) - 1, Column("RTO objective", min_width=6))
    for entry in listing:
        d = DRILLS[entry["name"]]
        versions = entry["backends"]
        needs = "; ".join(f"{b}: {', '.join(v['needs']) or 'the APIs only'}"
                          for b, v in versions.items())
        local = versions["local"]["rto_seconds"]
        rto = f"{local:.0f} s" + "".join(f" ({b}: {v['rto_seconds']:.0f} s)"
                                         for b, v in versions.items()
                                         if v["rto_seconds"] != local)
        row = [d.name]
        if backend is not None:
            row.append(_runnable_cell(entry, backend, have or frozenset()))
        row += [", ".join(d.profiles), ", ".join(d.backends), rto,
                f"{escape(d.description)}\n[dim]needs: {escape(needs)}[/]"]
        table.add_row(*row)
    out.print(table)


def _runnable_cell(entry: dict[str, Any], backend: str, have: frozenset[str]) -> str:
    """`runnable`, or in short why not (the full reason: `drill list --json`, or the
    refusal of `drill run`)."""
    version = entry["backends"].get(backend)
    if version is None:
        return f"[red]no[/]: no version (runs on {', '.join(entry['backends'])})"
    if not entry["runnable"]:
        return f"[red]no[/]: lacks {', '.join(sorted(set(version['needs']) - have))}"
    return "[green]runnable[/]" + (" with --yes-restore-vault" if version["confirm"] else "")


def _show(e: Event) -> None:
    """One timeline line as it happens: seconds since the drill began, kind, message."""
    mark = {True: " [green]ok[/]", False: " [red]FAILED[/]", None: ""}[e.ok]
    color = COLORS.get(e.kind, "cyan")
    err.print(f"  {e.at:7.2f}s [{color}]{e.kind:<9}[/] {redact(e.message)}{mark}",
              highlight=False)


def _announce(message: str) -> None:
    """Where the drill runs (running environment or its own), before it starts."""
    err.print(message)


def _complete_drills(_ctx: click.Context, _param: click.Parameter,
                     incomplete: str) -> list[str]:
    """Tab completion of NAME: the catalog's drills (an unknown name is refused with the
    list, by the library, so the message is the same from Python)."""
    from harness.drills import DRILLS

    return [n for n in DRILLS if n.startswith(incomplete)]


@drill.command("run")
@click.argument("name", shell_complete=_complete_drills)
@click.option("--backend", type=click.Choice(["local", "pods", "existing"]), default=None,
              help=BACKEND_HELP + " On pods the drill uses the pods environment recorded "
                   "running in --state-dir (`harness up --backend pods`) or starts its own "
                   "(staging). On existing it runs on the cluster of --config, starting "
                   "nothing, and only the drills the config's capabilities allow "
                   "(`harness drill list --config FILE`).  [default: local]")
@CONFIG_OPTION
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Profile of the environment the drill starts when none is running "
                   "(default: the drill's first).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Directory for report.md/json/html + timeline.png "
                   "(default: ./drill-reports/NAME-<UTC time>).")
@click.option("--keep", is_flag=True,
              help="Keep the environment the drill started (default: torn down).")
@click.option("--rto", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS",
              help="The RTO objective for the verdict, instead of the drill's own (and of "
                   "the existing config's objectives:).")
@click.option("--yes-restore-vault", "confirmed", is_flag=True,
              help="Accept what vault-snapshot-restore does on --backend existing: it "
                   "restores a raft snapshot of the WHOLE Vault in place, so every change "
                   "anyone makes to Vault during the drill is rolled back too.")
@click.option("--junit-xml", "junit", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Also write the verdict as JUnit XML (a testcase per "
                                 "drill; FAIL: a failure with the reasons) for CI.")
@JSON_OPTION
@click.pass_context
def drill_run(ctx: click.Context, name: str, backend: str | None, config: Path | None,
              profile: str | None, report_dir: Path | None, keep: bool, rto: float | None,
              confirmed: bool, junit: Path | None, as_json: bool) -> None:
    """Run a drill against the running environment of --state-dir when its profile
    suits the drill; otherwise in a fresh environment of its own; or on an existing
    cluster (--backend existing --config FILE). Exit 1 on FAIL, 2 when refused."""
    from harness.drills.junit import NotRun, write_junit
    from harness.drills.report import rpo_text
    from harness.drills.runner import plan_drill, report_paths, run_drill_session
    from harness.errors import HarnessError

    where = _backend_of(backend, config) or "local"

    def not_run(exc: HarnessError, error: bool) -> None:
        if junit is not None:
            write_junit(junit, [NotRun(name, where, str(exc), error=error)])
        if as_json:
            emit_json({"drill": name, "backend": where,
                       "verdict": "ERROR" if error else "REFUSED", "reasons": [str(exc)],
                       "junit": str(junit) if junit else None})

    settings = settings_from(ctx)
    try:
        plan = plan_drill(name, settings, profile, report_dir, where, config=config,
                          rto=rto, confirmed=confirmed)
    except HarnessError as exc:
        not_run(exc, error=False)
        raise
    try:
        outcome = run_drill_session(name, settings, keep=keep, announce=_announce,
                                    events=show_event, progress=_show, plan=plan)
    except HarnessError as exc:
        not_run(exc, error=True)
        raise
    result = outcome.result
    rto_text = f"{result.rto_seconds:.2f}s" if result.rto_seconds is not None else "n/a"
    color = "green" if result.verdict == "PASS" else "red"
    err.print(f"[{color}]{result.verdict}[/] RTO {rto_text} (objective "
              f"{result.objectives.rto_seconds:.0f}s), RPO {rpo_text(result)}")
    for reason in result.reasons:
        err.print(f"  [red]-[/] {escape(redact(reason))}", highlight=False)
    reports = report_paths(outcome.plan.report_dir)
    err.print(f"reports: {outcome.plan.report_dir}/"
              f"{', '.join(p.name for p in reports.values())}", highlight=False)
    if junit is not None:
        write_junit(junit, [result])
        err.print(f"JUnit XML: {junit}", highlight=False)
    if as_json:
        emit_json({**result.to_json(), "report_dir": str(outcome.plan.report_dir),
                   "reports": {k: str(v) for k, v in reports.items()},
                   "junit": str(junit) if junit else None})
    sys.exit(0 if result.verdict == "PASS" else 1)
