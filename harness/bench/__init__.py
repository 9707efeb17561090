"""`harness bench`: the performance figures, each beside the floor it should be read
against — etcd + kube-apiserver alone, started the way controller-runtime's envtest
starts them (no controller-manager, no scheduler, no KWOK, ServiceAccount admission off).

Figures are measured, never asserted: these machines are shared and noisy. Targets from
the issues are reported next to each figure with whether this run met them.

Layout: `figures` (the typed report and its JSON), `runners` (the measurements and the
temporary environments they run in), `render` (the rich table); `run_bench` here decides
which stack each measurement runs on and how often.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from harness.bench.figures import (
    AlertTimeline,
    BenchReport,
    Better,
    Comparison,
    Figure,
    PodsBench,
    Resilience,
    StackStart,
    percentile,
)
from harness.bench.render import render
from harness.bench.runners import (
    BENCH_TIME_SCALE,
    ControlPlaneSample,
    FloorSample,
    Log,
    MiB,
    StackSample,
    alert_timeline,
    build_times,
    byo_repo_figures,
    control_plane_run,
    envtest_floor,
    floor_run,
    gitops_figure,
    gitops_latency,
    kind_render_figure,
    kind_render_seconds,
    median_timeline,
    resilience_figures,
    rotation_figure,
    rotation_latency,
    sequential_start,
    settled_rss_mib,
    stack_sample,
    temporary_environment,
)
from harness.settings import Settings
from harness.toolchain import Toolchain

__all__ = [
    "BENCH_TIME_SCALE", "AlertTimeline", "BenchReport", "Better", "Comparison",
    "ControlPlaneSample", "Figure", "FloorSample", "Log", "MiB", "PodsBench", "Resilience",
    "StackSample", "StackStart",
    "alert_timeline", "build_times", "byo_repo_figures", "control_plane_run",
    "envtest_floor", "floor_run", "gitops_figure", "gitops_latency", "kind_render_figure",
    "kind_render_seconds", "percentile", "render", "resilience_figures", "rotation_figure",
    "rotation_latency", "run_bench", "run_db_bench", "run_node_bench", "run_pods_bench",
    "settled_rss_mib", "stack_sample",
    "temporary_environment",
]

GITOPS_COMMITS = 5
CONTROL_PLANE_FLOOR_RATIO = 1.2  # issue 18: the control plane within 1.2x the floor
PREVIOUS_RELEASE = ("not measured: heracles-harness has published no release, so no "
                    "earlier version can be in the cache to start beside this one")


def run_node_bench(settings: Settings, log: Log, repeat: int = 3) -> BenchReport:
    """Only the real node's figures (`harness bench --only node`)."""
    from harness.bench.node import node_figures

    toolchain = Toolchain(settings.cache_dir)
    return BenchReport(profile=settings.profile, repeat=repeat, figures=(),
                       floor_start=Figure("envtest_floor_start", "s"),
                       floor_rss=Figure("envtest_floor_rss", "MiB"),
                       node=node_figures(settings, toolchain, repeat, log),
                       toolchain_build_seconds=build_times(toolchain))


def run_db_bench(settings: Settings, log: Log, repeat: int = 3,
                 size_mib: int = 1024) -> BenchReport:
    """Only the database's figures (`harness bench --only db`): a database of `size_mib`
    generated, its full base backup and restore, the db-pitr RTO, the replication lag
    under load — on a prod stack."""
    from harness.bench.database import db_figures

    toolchain = Toolchain(settings.cache_dir)
    return BenchReport(profile="prod", repeat=repeat, figures=(),
                       floor_start=Figure("envtest_floor_start", "s"),
                       floor_rss=Figure("envtest_floor_rss", "MiB"),
                       database=db_figures(settings, toolchain, repeat, log, size_mib),
                       toolchain_build_seconds=build_times(toolchain))


def run_pods_bench(settings: Settings, log: Log, repeat: int = 5) -> BenchReport:
    """Only the pods backend beside the local backend (`harness bench --only pods`), on
    the settings' profile: start, RSS, write -> force-sync -> Secret (`repeat` samples,
    at least 5) and, on staging/prod, the active Vault lost (`repeat`, at most 3)."""
    from harness.bench.pods import pods_bench

    toolchain = Toolchain(settings.cache_dir)
    return BenchReport(profile=settings.profile, repeat=repeat, figures=(),
                       floor_start=Figure("envtest_floor_start", "s"),
                       floor_rss=Figure("envtest_floor_rss", "MiB"),
                       pods=pods_bench(settings, toolchain, repeat, log),
                       toolchain_build_seconds=build_times(toolchain))


def run_bench(settings: Settings, log: Log, repeat: int = 3,
              rotations: int = 20) -> BenchReport:
    """Measure everything `harness bench` reports. Each of `repeat` rounds starts the
    control plane alone, the envtest floor and the dev platform (the latency figures run
    on the first dev platform only); then the staging stack once, for the drills.
    Environments are started one at a time, so no figure is measured next to another
    stack's load."""
    toolchain = Toolchain(settings.cache_dir)
    control: list[ControlPlaneSample] = []
    floors: list[FloorSample] = []
    dev: list[StackSample] = []
    sequential: list[float] = []
    rotation = rotation_figure([])
    timeline = AlertTimeline()
    gitops = gitops_figure([])
    byo: list[Figure] = []
    for i in range(repeat):
        log(f"run {i + 1}/{repeat}: control plane start")
        control.append(control_plane_run(settings, toolchain))
        log(f"run {i + 1}/{repeat}: envtest floor (etcd + kube-apiserver)")
        floors.append(floor_run(settings, toolchain))
        log(f"run {i + 1}/{repeat}: dev platform (control plane, Vault, ESO, "
            "Prometheus, Alertmanager, Toxiproxy, Git, Argo CD)")
        with temporary_environment(settings, profile="dev", time_scale=BENCH_TIME_SCALE,
                                   toolchain=toolchain) as env:
            dev.append(stack_sample(env))
            if i == 0 and rotations:
                rotation = rotation_latency(env, rotations, log)
            if i == 0:
                timeline = alert_timeline(env, log)
                gitops = gitops_latency(env, GITOPS_COMMITS, log)
                byo = byo_repo_figures(env, log)
        log(f"run {i + 1}/{repeat}: dev platform, sequential start on an empty etcd "
            "(the anchor)")
        sequential.append(sequential_start(settings, toolchain))

    log("staging stack (3-node raft Vault with TLS, init + unseal, Service, ESO)")
    with temporary_environment(settings, profile="staging", toolchain=toolchain) as env:
        timings = dict(env.timings)
        staging = StackStart(timings=timings, rss_mib=settled_rss_mib(env))
        resilience = resilience_figures(env, repeat, log)
    kind_render = kind_render_figure(settings, log)
    from harness.bench.node import node_figures

    node = node_figures(settings, toolchain, repeat, log) if _node_possible(toolchain) else ()

    floor_start = Figure("envtest_floor_start", "s", [f.start_s for f in floors])
    floor_rss = Figure("envtest_floor_rss", "MiB", [f.rss_mib for f in floors])

    def headline(name: str, values: list[float], floor: Figure,
                 target: float | None) -> Figure:
        """A headline figure, read against the same quantity of the envtest floor."""
        return Figure(name, floor.unit, values, target=target, floor=floor.median)

    breakdown_keys = control[0].breakdown if control else {}
    anchor = statistics.median(sequential) if sequential else None
    dev_start = headline("dev_full_platform_start", [d.start_s for d in dev], floor_start,
                         8.0)
    return BenchReport(
        profile=settings.profile,
        repeat=repeat,
        figures=(
            headline("control_plane_start", [c.start_s for c in control], floor_start,
                     None if floor_start.median is None else round(
                         CONTROL_PLANE_FLOOR_RATIO * floor_start.median, 3)),
            headline("attach_reused_environment", [c.attach_s for c in control],
                     floor_start, 1.0),
            headline("total_rss_all_components", [c.rss_mib for c in control], floor_rss,
                     None),
            replace(dev_start, anchor=anchor, anchor_label="sequential start, empty etcd"),
            headline("dev_full_platform_start_sequential", sequential, floor_start, None),
            headline("dev_full_platform_rss", [d.rss_mib for d in dev], floor_rss, 2048.0),
        ),
        floor_start=floor_start,
        floor_rss=floor_rss,
        start_breakdown=tuple(Figure(k, "s", [c.breakdown[k] for c in control])
                              for k in breakdown_keys),
        staging=staging,
        resilience=resilience,
        alert_timeline=timeline,
        argocd_ready=Figure("argocd_ready", "s", [d.argocd_s for d in dev],
                            note="Argo CD ready (in the platform start)"),
        gitops_commit_to_synced=gitops,
        observability_start=Figure("prometheus_alertmanager_start", "s",
                                   [d.observability_s for d in dev], target=1.0,
                                   note="Prometheus + Alertmanager start"),
        rotation=rotation,
        byo_repo=tuple(byo),
        kind_render=kind_render,
        node=node,
        toolchain_build_seconds=build_times(toolchain),
        dev_start_timeline=median_timeline(dev),
        missing_anchors={"previous_release": PREVIOUS_RELEASE},
    )


def _node_possible(toolchain: Toolchain) -> bool:
    """The node's figures need root and its toolchain entries."""
    import os

    return os.geteuid() == 0 and not any(
        toolchain.problem(c) for c in ("kubernetes-node", "node-runtime", "image-tools",
                                       "coredns", "local-path-provisioner", "cri-tools"))
