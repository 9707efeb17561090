"""`harness bench` without --json: the report as two rich tables (figures, then toolchain
build times). Numbers are rounded exactly as in `BenchReport.to_json()`, so the table and
the JSON of one run always agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.bench.figures import BenchReport, Figure, PodsBench

if TYPE_CHECKING:
    from rich.console import Group
    from rich.table import Table


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _verdict(met: bool | None) -> str:
    return "[green]met[/]" if met else "[red]missed[/]"


def _headline_row(f: Figure) -> tuple[str, ...]:
    target = "-" if f.target is None else f"≤ {f.target}{f.unit} {_verdict(f.met)}"
    anchor = ("" if f.anchor is None else
              f"{_r(f.anchor)}{f.unit} {f.anchor_label}: {_r(f.ratio_to_anchor, 2)}x")
    return (f.name, f"{_r(f.median)}{f.unit}", f"{_r(f.min)}-{_r(f.max)}",
            f"{_r(f.floor)}{f.unit}", f"{_r(f.ratio_to_floor, 2)}x", anchor, target)


def render(report: BenchReport) -> Group:
    """The figures table (each headline figure beside the envtest floor and its target,
    then the single-run and latency figures), and the toolchain build-time table."""
    from rich.console import Group
    from rich.table import Table

    table = Table(title=f"harness bench (profile {report.profile}, "
                        f"median of {report.repeat})")
    for col in ("figure", "median", "min-max", "floor (envtest)", "ratio", "anchor",
                "target"):
        table.add_column(col)
    for fig in report.figures:
        table.add_row(*_headline_row(fig))

    if report.staging is not None:
        timings, rss = report.staging.timings, report.staging.rss_mib
        table.add_row("staging stack start (1 run)", f"{_r(timings.get('total'))}s",
                      f"vault {_r(timings.get('vault'))}s", "", "", "",
                      f"RSS {_r(rss, 1)}MiB")

    if report.resilience is not None:
        res = report.resilience
        for f in res.leader_loss:
            if f.values:
                table.add_row(f.note or f.name, f"{_r(f.median)}s", f"{_r(f.min)}-{_r(f.max)}",
                              "", "", "", f"goal <= {f.target}s {_verdict(f.met)}")
        f = res.vault_restore_rto
        table.add_row(f.note or f.name, f"{res.restore_rto_seconds}s",
                      res.vault_restore_verdict, "", "", "",
                      f"goal <= {f.target}s {_verdict(f.met is True)}")

    tl = report.alert_timeline
    if tl.overhead is not None:
        stages = tl.stages()
        table.add_row("VaultDown fault -> delivered, minus scaled for:",
                      f"{stages['overhead']}s", f"for {stages['for_scaled']}s", "", "", "",
                      "goal <= 3s")
    argo = report.argocd_ready
    if argo.values:
        table.add_row(argo.note or "Argo CD ready (in the platform start)",
                      f"{_r(argo.median)}s", "", "", "", "", "")
    git = report.gitops_commit_to_synced
    if git.count:
        table.add_row(git.note or "commit -> Synced (refresh trigger)", f"p50 {_r(git.p50)}s",
                      f"max {_r(git.max)}s", "", "", "", f"goal <= {git.target}s")
    for f in report.byo_repo:
        table.add_row(f.note or f.name, f"{_r(f.median)}s", "", "", "", "", "")
    if report.kind_render is not None:
        table.add_row(report.kind_render.note or "kind backend render",
                      f"{_r(report.kind_render.median)}s", "", "", "", "", "")
    obs = report.observability_start
    if obs.values:
        table.add_row(obs.note or "Prometheus + Alertmanager start", f"{_r(obs.median)}s",
                      "", "", "", "", "goal <= 1s")
    rot = report.rotation
    if rot.count:
        table.add_row(rot.note or "rotation (write -> force-sync -> Secret)",
                      f"p50 {_r(rot.p50)}s", f"p95 {_r(rot.p95)}s", "", "", "",
                      "goal p50 <= 1s, p95 <= 2s")

    for f in [*report.node, *report.database]:
        if f.values:
            digits = 1 if f.unit == "MiB" else 3
            table.add_row(f.note or f.name, f"{_r(f.median, digits)}{f.unit}",
                          f"{_r(f.min, digits)}-{_r(f.max, digits)}" if f.count > 1 else "",
                          "", "", "", f"n={f.count}")

    timeline = _timeline_table(report)
    builds = Table(title="toolchain: seconds of the build that produced each cache entry")
    builds.add_column("component")
    builds.add_column("build")
    for comp, secs in report.toolchain_build_seconds.items():
        builds.add_row(comp, "-" if secs is None else f"{secs}s")
    if report.pods is None:
        return Group(table, *([timeline] if timeline.row_count else []), builds)
    pods = _pods_table(report.pods, report.profile)
    # `--only pods` measures nothing of the main table: leave it out when it is empty
    return Group(*([table] if table.row_count else []), pods, builds)


def _pods_cell(f: Figure) -> str:
    """One backend's side: its value (p50/p95 when sampled), then its note, dimmed."""
    from rich.markup import escape

    digits = 1 if f.unit == "MiB" else 3
    if not f.values:
        value = "not measured"
    elif f.count == 1:
        value = f"{_r(f.values[0], digits)}{f.unit}"
    else:
        value = (f"p50 {_r(f.p50, digits)}{f.unit}, p95 {_r(f.p95, digits)}{f.unit} "
                 f"(n={f.count})")
    return f"{value}\n[dim]{escape(f.note)}[/]" if f.note else value


def _pods_table(pods: PodsBench, profile: str) -> Table:
    """figure | pods | local: each quantity on the pods backend beside the local one."""
    from rich.table import Table

    table = Table(title=f"pods backend vs local backend (profile {profile})")
    for col in ("figure", "pods", "local"):
        table.add_column(col, overflow="fold")
    for comp in pods.comparisons:
        table.add_row(f"{comp.name} ({comp.unit})", _pods_cell(comp.pods),
                      _pods_cell(comp.local))
    return table


def _timeline_table(report: BenchReport) -> Table:
    """The dev platform's start per component: when it began and was ready, in seconds
    after `up` began (medians), and what waited for nothing."""
    from rich.table import Table

    table = Table(title=f"dev platform start per component (median of {report.repeat})")
    for col in ("component", "began", "ready", "took"):
        table.add_column(col)
    for name, (began, ready) in report.dev_start_timeline.items():
        table.add_row(name, f"{_r(began, 2)}s", f"{_r(ready, 2)}s", f"{_r(ready - began, 2)}s")
    for name, why in report.missing_anchors.items():
        table.caption = f"{name}: {why}"
    return table
