"""The `harness bench` figure model: statistics, target checks, and the JSON document that
`harness bench --json` prints (its keys and shape are what scripts and docs rely on), and
that bench's temporary environments always come down. No cluster, no timing: every number
here is given, not measured."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import types
from pathlib import Path

import pytest
from rich.console import Console

from harness.bench.figures import (
    AlertTimeline,
    BenchReport,
    Figure,
    Resilience,
    StackStart,
    percentile,
)
from harness.bench.render import render
from harness.bench.runners import temporary_environment
from harness.settings import Settings

TOP_LEVEL_KEYS = [
    "profile", "repeat", "figures", "staging_stack_start_s", "resilience_s",
    "alert_vault_down_timeline_s", "argocd_ready_s", "gitops_commit_to_synced_s",
    "prometheus_alertmanager_start_s", "rotation_force_sync_latency_s", "byo_repo_s",
    "kind_render_s", "floor_envtest", "start_breakdown_s", "dev_start_timeline_s",
    "missing_anchors", "toolchain_build_seconds", "node",
]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0  # round(1.5) == 2: a real sample
    assert percentile(list(range(1, 21)), 0.95) == 19
    assert percentile([7.0], 0.95) == 7.0


def test_figure_statistics() -> None:
    f = Figure("x", "s", [3.0, 1.0, 2.0, 10.0])
    assert f.count == 4
    assert (f.min, f.max) == (1.0, 10.0)
    assert f.median == 2.5  # statistics.median: mean of the middle two
    assert f.p50 == 3.0  # nearest rank: one of the samples
    assert f.p95 == 10.0


def test_figure_keeps_its_samples_immutable() -> None:
    samples = [1, 2]
    f = Figure("x", "s", samples)
    samples.append(100)
    assert f.values == (1.0, 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.target = 1.0  # type: ignore[misc]


def test_empty_figure_has_no_statistics_and_no_verdict() -> None:
    f = Figure("x", "s", [], target=1.0, floor=2.0)
    assert f.count == 0
    assert (f.min, f.max, f.median, f.p50, f.p95) == (None, None, None, None, None)
    assert f.ratio_to_floor is None
    assert f.met is None


def test_met_lower_is_better_includes_the_target() -> None:
    assert Figure("x", "s", [2.0, 3.0], target=2.5).met is True
    assert Figure("x", "s", [2.0, 3.0], target=2.4).met is False
    assert Figure("x", "s", [2.0, 3.0]).met is None


def test_met_higher_is_better() -> None:
    assert Figure("x", "ops", [2.0, 3.0], target=2.0, better="higher").met is True
    assert Figure("x", "ops", [2.0, 3.0], target=3.0, better="higher").met is False


def test_met_needs_the_p95_target_too() -> None:
    tail = [0.5] * 17 + [5.0] * 3
    assert Figure("x", "s", tail, target=1.0).met is True
    assert Figure("x", "s", tail, target=1.0, p95_target=2.0).met is False
    assert Figure("x", "s", [0.5] * 19 + [5.0], target=1.0, p95_target=2.0).met is True


def test_figure_rejects_meaningless_settings() -> None:
    with pytest.raises(ValueError, match="better"):
        Figure("x", "s", [1.0], better="faster")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p95"):
        Figure("x", "ops", [1.0], better="higher", p95_target=2.0)


def test_ratio_to_floor() -> None:
    assert Figure("x", "s", [3.0], floor=2.0).ratio_to_floor == 1.5
    assert Figure("x", "s", [3.0]).ratio_to_floor is None
    assert Figure("x", "s", [3.0], floor=0.0).ratio_to_floor is None


def test_a_figure_read_against_an_anchor_says_which_and_how_many_times() -> None:
    f = Figure("dev_full_platform_start", "s", [8.0, 7.0, 9.0], target=8.0, floor=2.0,
               anchor=16.0, anchor_label="sequential start")
    assert f.ratio_to_anchor == 0.5
    data = f.to_json()
    assert (data["anchor"], data["anchor_label"], data["ratio_to_anchor"]) == (
        16.0, "sequential start", 0.5)
    assert "anchor" not in Figure("x", "s", [1.0]).to_json()
    assert Figure("x", "s", [1.0], anchor=0.0).ratio_to_anchor is None


def test_headline_figure_json() -> None:
    f = Figure("control_plane_start", "s", [1.23456, 2.34567, 3.45678], target=5.0,
               floor=0.987654)
    assert f.to_json() == {"median": 2.346, "min": 1.235, "max": 3.457, "unit": "s",
                           "floor": 0.988, "ratio_to_floor": 2.37, "target": 5.0,
                           "met": True}
    assert Figure("rss", "MiB", [10.0], floor=5.0).to_json()["met"] is None


def test_alert_timeline_rounds_after_subtracting() -> None:
    tl = AlertTimeline(marks={"up_zero": 1.23456, "delivered": 7.6549}, for_scaled=5.0)
    assert tl.overhead == pytest.approx(2.6549)
    assert tl.to_json() == {"up_zero": 1.23, "delivered": 7.65, "for_scaled": 5.0,
                            "overhead": 2.65, "goal_overhead": 3.0}
    undelivered = AlertTimeline(marks={"up_zero": 1.0}, for_scaled=5.0)
    assert undelivered.overhead is None
    assert "overhead" not in undelivered.to_json()
    assert AlertTimeline().to_json() == {"goal_overhead": 3.0}


def _resilience(kills: list[float], restore_rto: float | None) -> Resilience:
    return Resilience(
        new_active_after_leader_kill=Figure("new_active_after_leader_kill", "s", kills,
                                            target=3.0),
        eso_sync_resumed_after_failover=Figure("eso_sync_resumed_after_failover", "s",
                                               [8.0, 12.0, 9.0], target=10.0),
        vault_leader_loss_rto=Figure("vault_leader_loss_rto", "s", [], target=10.0),
        vault_restore_rto=Figure("vault_restore_rto", "s",
                                 [] if restore_rto is None else [restore_rto], target=30.0),
        vault_restore_verdict="PASS" if restore_rto is not None else "FAIL",
        vault_restore_rpo={"lost": 0, "unit": "write(s)"})


def test_resilience_json() -> None:
    data = _resilience([2.5, 3.5, 2.9], 12.346).to_json()
    assert list(data) == ["new_active_after_leader_kill", "eso_sync_resumed_after_failover",
                          "vault_leader_loss_rto", "vault_restore_rto"]
    assert data["new_active_after_leader_kill"] == {"median": 2.9, "min": 2.5, "max": 3.5,
                                                    "goal": 3.0, "met": True}
    assert data["eso_sync_resumed_after_failover"]["met"] is True
    assert data["vault_leader_loss_rto"] == {"median": None, "goal": 10.0, "met": None}
    assert data["vault_restore_rto"] == {"value": 12.346, "goal": 30.0, "verdict": "PASS",
                                         "rpo": {"lost": 0, "unit": "write(s)"}, "met": True}


def test_unrestored_vault_counts_as_missed() -> None:
    restore = _resilience([2.0], None).to_json()["vault_restore_rto"]
    assert restore["value"] is None
    assert restore["met"] is False


def _report() -> BenchReport:
    floor_start = Figure("envtest_floor_start", "s", [1.0, 1.2, 1.1])
    floor_rss = Figure("envtest_floor_rss", "MiB", [100.0, 100.2, 100.1])
    return BenchReport(
        profile="dev", repeat=3,
        figures=(
            Figure("control_plane_start", "s", [3.0, 4.0, 6.0], target=5.0,
                   floor=floor_start.median),
            Figure("dev_full_platform_rss", "MiB", [3000.0, 2500.0, 2600.0],
                   target=2048.0, floor=floor_rss.median),
        ),
        floor_start=floor_start, floor_rss=floor_rss,
        start_breakdown=(Figure("etcd", "s", [0.4, 0.5, 0.6]),
                         Figure("kube-apiserver", "s", [2.0, 2.2, 2.1])),
        staging=StackStart(timings={"vault": 4.12345, "total": 9.87654}, rss_mib=812.345),
        resilience=_resilience([2.5, 3.5, 2.9], 12.346),
        alert_timeline=AlertTimeline(marks={"pending": 1.0, "delivered": 7.5},
                                     for_scaled=5.0),
        argocd_ready=Figure("argocd_ready", "s", [3.0, 3.3, 3.1]),
        gitops_commit_to_synced=Figure("gitops_commit_to_synced", "s",
                                       [1.0, 2.0, 3.0, 4.0], target=5.0),
        observability_start=Figure("prometheus_alertmanager_start", "s", [0.8, 0.9, 1.4],
                                   target=1.0),
        rotation=Figure("rotation_force_sync_latency", "s", [0.5] * 19 + [2.5],
                        target=1.0, p95_target=2.0),
        byo_repo=(Figure("gitops_apply", "s", [3.4567891]),),
        kind_render=Figure("kind_render", "s", [2.3456]),
        toolchain_build_seconds={"kubernetes": 321.5, "etcd": None},
    )


def test_report_json_keeps_the_published_keys_and_values() -> None:
    data = _report().to_json()
    assert list(data) == TOP_LEVEL_KEYS
    assert (data["profile"], data["repeat"]) == ("dev", 3)
    assert list(data["figures"]) == ["control_plane_start", "dev_full_platform_rss"]
    assert data["figures"]["control_plane_start"] == {
        "median": 4.0, "min": 3.0, "max": 6.0, "unit": "s", "floor": 1.1,
        "ratio_to_floor": 3.64, "target": 5.0, "met": True}
    assert data["figures"]["dev_full_platform_rss"]["met"] is False
    assert data["staging_stack_start_s"] == {"vault": 4.123, "total": 9.877, "rss_mib": 812.3}
    assert data["alert_vault_down_timeline_s"] == {
        "pending": 1.0, "delivered": 7.5, "for_scaled": 5.0, "overhead": 2.5,
        "goal_overhead": 3.0}
    assert data["argocd_ready_s"] == {"median": 3.1}
    assert data["gitops_commit_to_synced_s"] == {"count": 4, "p50": 3.0, "max": 4.0,
                                                 "goal": 5.0}
    assert data["prometheus_alertmanager_start_s"] == {"median": 0.9, "goal": 1.0}
    assert data["rotation_force_sync_latency_s"] == {
        "count": 20, "p50": 0.5, "p95": 0.5, "max": 2.5, "goal": {"p50": 1.0, "p95": 2.0}}
    assert data["byo_repo_s"] == {"gitops_apply": 3.457}
    assert data["kind_render_s"] == 2.346
    assert data["floor_envtest"] == {"start_s": 1.1, "rss_mib": 100.1}
    assert data["start_breakdown_s"] == {"etcd": 0.5, "kube-apiserver": 2.1}
    assert data["toolchain_build_seconds"] == {"kubernetes": 321.5, "etcd": None}
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down


def test_report_json_of_sections_not_measured() -> None:
    empty = Figure("envtest_floor_start", "s", [1.0])
    data = BenchReport(profile="staging", repeat=1, figures=(), floor_start=empty,
                       floor_rss=Figure("envtest_floor_rss", "MiB", [50.0])).to_json()
    assert list(data) == TOP_LEVEL_KEYS
    assert data["staging_stack_start_s"] == {}
    assert data["resilience_s"] == {}
    assert data["alert_vault_down_timeline_s"] == {"goal_overhead": 3.0}
    assert data["argocd_ready_s"] == {"median": None}
    assert data["gitops_commit_to_synced_s"] == {"count": 0, "p50": None, "max": None,
                                                 "goal": 5.0}
    assert data["rotation_force_sync_latency_s"]["goal"] == {"p50": 1.0, "p95": 2.0}
    assert data["rotation_force_sync_latency_s"]["count"] == 0
    assert data["kind_render_s"] is None


def test_report_figure_lookup() -> None:
    report = _report()
    assert report.figure("control_plane_start").target == 5.0
    with pytest.raises(KeyError):
        report.figure("nope")


def test_render_shows_targets_and_verdicts() -> None:
    console = Console(file=io.StringIO(), width=220, color_system=None)
    console.print(render(_report()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "harness bench (profile dev, median of 3)" in text
    assert "≤ 5.0s met" in text
    assert "≤ 2048.0MiB missed" in text
    assert "RSS 812.3MiB" in text
    assert "vault_restore_rto" in text and "12.346s" in text and "PASS" in text
    assert "goal <= 3.0s met" in text
    assert "p50 3.0s" in text and "max 4.0s" in text
    assert "platform repo gitops apply" not in text  # no note given: the name is the label
    assert "gitops_apply" in text
    assert "kubernetes" in text and "321.5s" in text


class _FakeEnvironment:
    """Records what temporary_environment does with the environment it makes."""

    made: list[_FakeEnvironment] = []

    def __init__(self, settings: Settings, toolchain: object = None) -> None:
        self.settings = settings
        self.calls: list[str] = []
        _FakeEnvironment.made.append(self)

    def up(self, components: list[str] | None = None, mode: str = "detached",
           events: object = None) -> _FakeEnvironment:
        self.calls.append(f"up {components} {mode}")
        return self

    def down(self, purge: bool = False, events: object = None) -> None:
        self.calls.append("down")


def test_temporary_environment_always_comes_down(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    stub = types.ModuleType("harness.backends.local.environment")
    stub.LocalEnvironment = _FakeEnvironment  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "harness.backends.local.environment", stub)
    _FakeEnvironment.made.clear()
    settings = Settings(profile="dev", state_dir=tmp_path / "mine", cache_dir=tmp_path / "c")

    with pytest.raises(RuntimeError, match="measurement failed"):
        with temporary_environment(settings, profile="staging", components=["kube"],
                                   time_scale=60.0) as env:
            state = env.settings.state_dir
            assert state.parent.exists()
            raise RuntimeError("measurement failed")

    [made] = _FakeEnvironment.made
    assert made.calls == ["up ['kube'] session", "down"]
    assert made.settings.profile == "staging" and made.settings.time_scale == 60.0
    assert state != settings.state_dir  # never the developer's environment
    assert not state.parent.exists()  # the throw-away state directory is gone
