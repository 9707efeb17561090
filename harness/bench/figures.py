"""The typed model of `harness bench`: a `Figure` is the samples of one measurement with
its unit and target, a `BenchReport` groups them with the facts they are read against
(the envtest floor, toolchain build times).

The model keeps raw samples and rounds only when serialised, so `to_json()` gives exactly
the numbers (and keys) `harness bench --json` has always printed: scripts and the figures
quoted in docs/toolchain.md keep reading the same document.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Better = Literal["lower", "higher"]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: always one of the samples, so a p95 of few runs is a real
    run rather than an interpolation nobody measured."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _round(value: float | None, digits: int) -> float | None:
    """Round for display/JSON, keeping "not measured" (None) as is."""
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Figure:
    """One measurement: its samples, unit, and the target it is reported against.

    Figures are never asserted (the machines are shared and noisy): `met` only says
    whether this run's median (and p95, when it has a p95 target) met the target.
    `floor` is the same quantity for the envtest floor, for figures read against it.
    """

    name: str
    unit: str
    values: Sequence[float] = ()
    target: float | None = None
    better: Better = "lower"
    note: str = ""
    floor: float | None = None
    p95_target: float | None = None
    # Another figure of the same run this one is read against (a sequential start...).
    anchor: float | None = None
    anchor_label: str = ""

    def __post_init__(self) -> None:
        # A tuple: the figure is frozen, its samples must not change under a report.
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.better not in ("lower", "higher"):
            raise ValueError(f"figure {self.name!r}: better must be 'lower' or 'higher', "
                             f"not {self.better!r}")
        if self.p95_target is not None and self.better != "lower":
            raise ValueError(f"figure {self.name!r}: a p95 target bounds the slow tail, "
                             "so it only applies to lower-is-better figures")

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def min(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def max(self) -> float | None:
        return max(self.values) if self.values else None

    @property
    def median(self) -> float | None:
        """statistics.median (the mean of the middle two for an even count)."""
        return statistics.median(self.values) if self.values else None

    @property
    def p50(self) -> float | None:
        """Nearest-rank 50th percentile; differs from `median` for even counts."""
        return percentile(self.values, 0.5) if self.values else None

    @property
    def p95(self) -> float | None:
        return percentile(self.values, 0.95) if self.values else None

    @property
    def ratio_to_floor(self) -> float | None:
        """How many times the envtest floor this figure's median is."""
        if not self.values or not self.floor:
            return None
        return statistics.median(self.values) / self.floor

    @property
    def ratio_to_anchor(self) -> float | None:
        """How many times its anchor this figure's median is."""
        if not self.values or not self.anchor:
            return None
        return statistics.median(self.values) / self.anchor

    @property
    def met(self) -> bool | None:
        """Whether the median (and p95) met the target; None when there is no target or
        nothing was measured."""
        if not self.values or (self.target is None and self.p95_target is None):
            return None
        ok = True
        if self.target is not None:
            med = statistics.median(self.values)
            ok = med <= self.target if self.better == "lower" else med >= self.target
        if self.p95_target is not None:
            ok = ok and percentile(self.values, 0.95) <= self.p95_target
        return ok

    def to_json(self) -> dict[str, Any]:
        """The shape of an entry of the report's "figures" section."""
        out = {"median": _round(self.median, 3), "min": _round(self.min, 3),
               "max": _round(self.max, 3), "unit": self.unit,
               "floor": _round(self.floor, 3),
               "ratio_to_floor": _round(self.ratio_to_floor, 2),
               "target": self.target, "met": self.met}
        if self.anchor is not None:
            out.update(anchor=_round(self.anchor, 3), anchor_label=self.anchor_label,
                       ratio_to_anchor=_round(self.ratio_to_anchor, 2))
        return out


@dataclass(frozen=True)
class StackStart:
    """One start of a whole stack: seconds per component (and "total"), then its RSS."""

    timings: Mapping[str, float]
    rss_mib: float

    def to_json(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.timings.items()},
                "rss_mib": round(self.rss_mib, 1)}


@dataclass(frozen=True)
class Resilience:
    """The drills on the staging stack: three vault-leader-loss figures over the repeats,
    and the one vault-restore run (its RTO, verdict and RPO)."""

    new_active_after_leader_kill: Figure
    eso_sync_resumed_after_failover: Figure
    vault_leader_loss_rto: Figure
    vault_restore_rto: Figure
    vault_restore_verdict: str
    vault_restore_rpo: Mapping[str, Any]

    @property
    def leader_loss(self) -> tuple[Figure, Figure, Figure]:
        return (self.new_active_after_leader_kill, self.eso_sync_resumed_after_failover,
                self.vault_leader_loss_rto)

    @property
    def restore_rto_seconds(self) -> float | None:
        return self.vault_restore_rto.values[0] if self.vault_restore_rto.values else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fig in self.leader_loss:
            if fig.values:
                out[fig.name] = {"median": _round(fig.median, 3), "min": _round(fig.min, 3),
                                 "max": _round(fig.max, 3), "goal": fig.target,
                                 "met": fig.met}
            else:
                out[fig.name] = {"median": None, "goal": fig.target, "met": None}
        restore = self.vault_restore_rto
        out[restore.name] = {"value": self.restore_rto_seconds, "goal": restore.target,
                             "verdict": self.vault_restore_verdict,
                             "rpo": dict(self.vault_restore_rpo),
                             "met": restore.met is True}
        return out


@dataclass(frozen=True)
class AlertTimeline:
    """Seconds from pausing Vault to each stage of VaultDown (up_zero, pending, firing,
    delivered, in the order seen), and the rule's `for:` at the bench's time scale."""

    marks: Mapping[str, float] = field(default_factory=dict)
    for_scaled: float | None = None
    goal_overhead: float = 3.0

    @property
    def overhead(self) -> float | None:
        """What the harness adds beyond the rule's own wait: delivered minus `for:`."""
        if "delivered" not in self.marks or self.for_scaled is None:
            return None
        return self.marks["delivered"] - self.for_scaled

    def stages(self) -> dict[str, float]:
        """The measured part, rounded as it is logged and reported."""
        out = {k: round(v, 2) for k, v in self.marks.items()}
        if self.for_scaled is not None:
            out["for_scaled"] = round(self.for_scaled, 2)
        overhead = self.overhead
        if overhead is not None:
            out["overhead"] = round(overhead, 2)
        return out

    def to_json(self) -> dict[str, float]:
        return {**self.stages(), "goal_overhead": self.goal_overhead}


def _side_json(fig: Figure) -> dict[str, Any]:
    """One backend's side of a comparison: which figure, its statistics, its note."""
    digits = 1 if fig.unit == "MiB" else 3
    return {"figure": fig.name, "count": fig.count, "median": _round(fig.median, digits),
            "p50": _round(fig.p50, digits), "p95": _round(fig.p95, digits),
            "min": _round(fig.min, digits), "max": _round(fig.max, digits),
            "note": fig.note}


@dataclass(frozen=True)
class Comparison:
    """One quantity measured on both backends: the pods backend's figure beside the
    local backend's (each keeps its own name and note: a local figure that is not the
    same measurement says how it differs)."""

    name: str
    unit: str
    pods: Figure
    local: Figure

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "pods": _side_json(self.pods),
                "local": _side_json(self.local)}


@dataclass(frozen=True)
class PodsBench:
    """`harness bench --only pods`: the pods backend beside the local backend, one
    comparison per quantity, and the seconds of each step of the pods backend's `up`."""

    comparisons: Sequence[Comparison]
    up_steps: Mapping[str, float] = field(default_factory=dict)

    def comparison(self, name: str) -> Comparison:
        """A comparison by name (KeyError if there is none by that name)."""
        for comp in self.comparisons:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"figures": {c.name: c.to_json() for c in self.comparisons},
                "up_steps_s": {k: round(v, 3) for k, v in self.up_steps.items()}}


@dataclass(frozen=True)
class BenchReport:
    """Everything one `harness bench` measured. `figures` are the headline figures, each
    read against the envtest floor; the other fields are the sections after them."""

    profile: str
    repeat: int
    figures: Sequence[Figure]
    floor_start: Figure
    floor_rss: Figure
    start_breakdown: Sequence[Figure] = ()
    staging: StackStart | None = None
    resilience: Resilience | None = None
    alert_timeline: AlertTimeline = field(default_factory=AlertTimeline)
    argocd_ready: Figure = field(default_factory=lambda: Figure("argocd_ready", "s"))
    gitops_commit_to_synced: Figure = field(
        default_factory=lambda: Figure("gitops_commit_to_synced", "s", target=5.0))
    observability_start: Figure = field(
        default_factory=lambda: Figure("prometheus_alertmanager_start", "s", target=1.0))
    rotation: Figure = field(default_factory=lambda: Figure(
        "rotation_force_sync_latency", "s", target=1.0, p95_target=2.0))
    byo_repo: Sequence[Figure] = ()
    kind_render: Figure | None = None
    node: Sequence[Figure] = ()
    database: Sequence[Figure] = ()
    toolchain_build_seconds: Mapping[str, float | None] = field(default_factory=dict)
    pods: PodsBench | None = None
    # The dev platform's start, per component: (began, ready) seconds after `up` began,
    # medians over the repeats.
    dev_start_timeline: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # What could not be measured as an anchor, and why.
    missing_anchors: Mapping[str, str] = field(default_factory=dict)

    def figure(self, name: str) -> Figure:
        """A headline figure by name (KeyError if this report has none by that name)."""
        for fig in self.figures:
            if fig.name == name:
                return fig
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The `harness bench --json` document (a dict ready for json.dumps), with the
        keys, nesting, rounding and order it has always had."""
        gitops, rot = self.gitops_commit_to_synced, self.rotation
        out: dict[str, Any] = {
            "profile": self.profile,
            "repeat": self.repeat,
            "figures": {f.name: f.to_json() for f in self.figures},
            "staging_stack_start_s": self.staging.to_json() if self.staging else {},
            "resilience_s": self.resilience.to_json() if self.resilience else {},
            "alert_vault_down_timeline_s": self.alert_timeline.to_json(),
            "argocd_ready_s": {"median": _round(self.argocd_ready.median, 3)},
            "gitops_commit_to_synced_s": {
                "count": gitops.count, "p50": _round(gitops.p50, 3),
                "max": _round(gitops.max, 3), "goal": gitops.target},
            "prometheus_alertmanager_start_s": {
                "median": _round(self.observability_start.median, 3),
                "goal": self.observability_start.target},
            "rotation_force_sync_latency_s": {
                "count": rot.count, "p50": _round(rot.p50, 3), "p95": _round(rot.p95, 3),
                "max": _round(rot.max, 3), "goal": {"p50": rot.target, "p95": rot.p95_target},
            },
            "byo_repo_s": {f.name: _round(f.median, 3) for f in self.byo_repo},
            "kind_render_s": _round(self.kind_render.median, 3) if self.kind_render else None,
            "floor_envtest": {"start_s": _round(self.floor_start.median, 3),
                              "rss_mib": _round(self.floor_rss.median, 1)},
            "start_breakdown_s": {f.name: _round(f.median, 3) for f in self.start_breakdown},
            "dev_start_timeline_s": {k: {"began": _round(b, 3), "ready": _round(r, 3)}
                                     for k, (b, r) in self.dev_start_timeline.items()},
            "missing_anchors": dict(self.missing_anchors),
            "toolchain_build_seconds": dict(self.toolchain_build_seconds),
            "node": {f.name: {"unit": f.unit, "median": _round(f.median, 3),
                              "min": _round(f.min, 3), "max": _round(f.max, 3),
                              "count": f.count} for f in self.node if f.values},
        }
        if self.database:  # `--only db`
            out["database"] = {f.name: {"unit": f.unit, "median": _round(f.median, 3),
                                        "p95": _round(f.p95, 3), "max": _round(f.max, 3),
                                        "count": f.count, "note": f.note}
                               for f in self.database if f.values}
        if self.pods is not None:  # only `--only pods` measures it: the key comes last
            out["pods"] = self.pods.to_json()
        return out
