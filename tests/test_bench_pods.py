"""`harness bench --only pods`: the report's pods section (its JSON, its table figure |
pods | local), the CLI choice, and that the pods environment bench starts always comes
down. No environment is started and nothing is timed: every number here is given."""

from __future__ import annotations

import io
import json
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from harness.bench.figures import BenchReport, Comparison, Figure, PodsBench
from harness.bench.pods import DEV_FAILOVER, _measure, pods_side
from harness.bench.render import render
from harness.runtime.redact import REDACTOR
from harness.settings import Settings
from harness.toolchain import Toolchain


def _pods(failover: Figure | None = None) -> PodsBench:
    return PodsBench(comparisons=(
        Comparison("pods_up_seconds", "s",
                   Figure("pods_up_seconds", "s", [123.45678], note="pods: 1 run"),
                   Figure("local_up_seconds", "s", [9.87654], note="local: processes")),
        Comparison("pods_rss_mib", "MiB", Figure("pods_rss_mib", "MiB", [2345.678]),
                   Figure("local_rss_mib", "MiB", [1234.567])),
        Comparison("write_to_secret_seconds", "s",
                   Figure("write_to_secret_seconds", "s", [0.5, 0.7, 0.6, 0.9, 2.5]),
                   Figure("rotation_force_sync_latency", "s", [0.2, 0.3, 0.25, 0.21, 0.4],
                          target=1.0, p95_target=2.0)),
        Comparison("vault_pod_kill_failover_seconds", "s",
                   failover or Figure("vault_pod_kill_failover_seconds", "s", (),
                                      note=DEV_FAILOVER),
                   Figure("vault_leader_loss_rto", "s", (), note="dev: one process")),
    ), up_steps={"preflight": 0.01234, "helm install vault": 20.5})


def _report(pods: PodsBench | None) -> BenchReport:
    return BenchReport(profile="dev", repeat=5, figures=(),
                       floor_start=Figure("envtest_floor_start", "s"),
                       floor_rss=Figure("envtest_floor_rss", "MiB"), pods=pods,
                       toolchain_build_seconds={"openbao": 12.0})


def test_pods_section_is_the_last_key_and_only_when_measured() -> None:
    with_pods = _report(_pods()).to_json()
    assert list(with_pods)[-1] == "pods"
    assert list(with_pods)[:-1] == list(_report(None).to_json())
    assert "pods" not in _report(None).to_json()


def test_pods_json_has_both_sides_of_each_figure() -> None:
    data = _report(_pods()).to_json()["pods"]
    assert list(data) == ["figures", "up_steps_s"]
    assert list(data["figures"]) == ["pods_up_seconds", "pods_rss_mib",
                                     "write_to_secret_seconds",
                                     "vault_pod_kill_failover_seconds"]
    up = data["figures"]["pods_up_seconds"]
    assert up == {"unit": "s",
                  "pods": {"figure": "pods_up_seconds", "count": 1, "median": 123.457,
                           "p50": 123.457, "p95": 123.457, "min": 123.457,
                           "max": 123.457, "note": "pods: 1 run"},
                  "local": {"figure": "local_up_seconds", "count": 1, "median": 9.877,
                            "p50": 9.877, "p95": 9.877, "min": 9.877, "max": 9.877,
                            "note": "local: processes"}}
    rss = data["figures"]["pods_rss_mib"]
    assert (rss["unit"], rss["pods"]["median"], rss["local"]["median"]) == (
        "MiB", 2345.7, 1234.6)
    write = data["figures"]["write_to_secret_seconds"]
    assert (write["pods"]["count"], write["pods"]["p50"], write["pods"]["p95"]) == (
        5, 0.7, 2.5)
    assert write["local"]["figure"] == "rotation_force_sync_latency"
    failover = data["figures"]["vault_pod_kill_failover_seconds"]["pods"]
    assert failover["count"] == 0 and failover["median"] is None
    assert failover["note"] == "dev: one dev-mode Pod"
    assert data["up_steps_s"] == {"preflight": 0.012, "helm install vault": 20.5}
    assert json.loads(json.dumps(data)) == data  # plain JSON all the way down


def test_comparison_lookup() -> None:
    assert _pods().comparison("pods_rss_mib").local.name == "local_rss_mib"
    with pytest.raises(KeyError):
        _pods().comparison("nope")


def _text(report: BenchReport) -> str:
    console = Console(file=io.StringIO(), width=250, color_system=None)
    console.print(render(report))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_render_puts_pods_beside_local() -> None:
    text = _text(_report(_pods()))
    assert "pods backend vs local backend (profile dev)" in text
    header = next(line for line in text.splitlines() if "figure" in line and "pods" in line)
    assert header.index("figure") < header.index("pods") < header.index("local")
    row = next(line for line in text.splitlines() if "pods_up_seconds (s)" in line)
    assert "123.457s" in row and "9.877s" in row
    assert "2345.7MiB" in text and "1234.6MiB" in text
    assert "p50 0.7s, p95 2.5s (n=5)" in text
    assert "p50 0.25s, p95 0.4s (n=5)" in text
    assert "not measured" in text and "dev: one dev-mode Pod" in text
    assert "openbao" in text  # the toolchain table still follows
    # nothing of the main table was measured: it is left out
    assert "harness bench (profile dev" not in text


def test_render_keeps_brackets_in_notes() -> None:
    failover = Figure("vault_pod_kill_failover_seconds", "s", (),
                      note="failed: WaitTimeout: [vault-0] not Ready")
    text = _text(_report(_pods(failover)))
    assert "[vault-0] not Ready" in text


def test_render_without_pods_is_unchanged() -> None:
    assert "pods backend vs local" not in _text(_report(None))


def test_cli_offers_only_pods() -> None:
    from harness.cli.bench import bench

    result = CliRunner().invoke(bench, ["--help"])
    assert result.exit_code == 0
    assert "[all|node|pods|db]" in result.output


def test_a_failed_measurement_is_not_measured_with_why_redacted() -> None:
    REDACTOR.add("s3cr3t-token-value")
    lines: list[str] = []

    def boom() -> Figure:
        raise RuntimeError("login with s3cr3t-token-value refused\nsecond line")

    fig = _measure("write_to_secret_seconds", "s", lines.append, boom)
    assert fig.count == 0 and fig.unit == "s"
    assert fig.note.startswith("failed: RuntimeError: login with")
    assert "s3cr3t-token-value" not in fig.note and "second line" not in fig.note
    assert lines and "s3cr3t-token-value" not in lines[0]


class _FakePods:
    """Records what pods_side does with the environment it makes; up() fails."""

    made: list[_FakePods] = []

    def __init__(self, settings: Settings, toolchain: Any = None) -> None:
        self.settings = settings
        self.profile = settings.profile
        self.calls: list[str] = []
        _FakePods.made.append(self)

    def up(self, progress: Any = None) -> _FakePods:
        self.calls.append("up")
        raise RuntimeError("helm install failed")

    def down(self) -> None:
        self.calls.append("down")


def test_the_pods_environment_always_comes_down(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    stub = types.ModuleType("harness.backends.pods.environment")
    stub.PodsEnvironment = _FakePods  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "harness.backends.pods.environment", stub)
    made_dirs: list[str] = []

    def mkdtemp(prefix: str = "", dir: str | None = None) -> str:
        assert (prefix, dir) == ("hb-", "/tmp")  # short: kubelet sockets fit 107 bytes
        path = tmp_path / f"{prefix}x"
        path.mkdir()
        made_dirs.append(str(path))
        return str(path)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    _FakePods.made.clear()
    settings = Settings(profile="dev", state_dir=tmp_path / "mine", cache_dir=tmp_path / "c")
    with pytest.raises(RuntimeError, match="helm install failed"):
        pods_side(settings, Toolchain(tmp_path / "c"), 5, 1, lambda _m: None)
    [made] = _FakePods.made
    assert made.calls == ["up", "down"]
    assert str(made.settings.state_dir) == made_dirs[0]  # never the developer's state
