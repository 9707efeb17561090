"""How this repository's suite is split over pytest-xdist workers (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import conftest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


def test_the_real_node_group_is_exactly_the_modules_marked_real_node() -> None:
    marked = {str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("test_*.py")
              if "pytest.mark.real_node" in p.read_text()}
    assert marked == conftest.REAL_NODE_FILES


def test_files_are_groups_except_the_real_node_and_staging_groups() -> None:
    group = conftest.xdist_group
    assert group("tests/test_cli.py::test_version") == "tests/test_cli.py"
    assert group("scenarios/test_pods_backend.py::test_x[a::b]") == "real_node"
    assert group("scenarios/staging/test_failover.py::t") == \
        group("scenarios/staging/test_vault_ha.py::t") == "scenarios/staging"
    assert group("scenarios/staging/test_backup_restore.py::t") == \
        "scenarios/staging/test_backup_restore.py"


def use_the_root_scheduler(pytester: pytest.Pytester) -> None:
    """The pytester run schedules with this repository's conftest.py."""
    pytester.makeconftest(f'''
import importlib.util
spec = importlib.util.spec_from_file_location("heracles_root", {str(ROOT / "conftest.py")!r})
root = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root)
pytest_xdist_make_scheduler = root.pytest_xdist_make_scheduler
pytest_configure = root.pytest_configure
''')


SLEEPER = '''
import json, os, time
def _record(name, t0):
    with open(os.environ["CLOCK_LOG"], "a") as log:
        log.write(json.dumps([__file__.rsplit("/", 2)[-2:][-1], t0, time.time()]) + "\\n")
''' + "\n".join(f'''
def test_{i}():
    t0 = time.time()
    time.sleep(0.4)
    _record("{i}", t0)
''' for i in range(3))


def test_the_scheduler_runs_known_long_groups_first_and_the_real_node_group_last_alone(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real scheduler, on real xdist workers: a group known to be long starts before
    a group of unknown length; the real-node group starts once every other group has
    ended, and nothing runs beside it; the run's group lengths land in the cache."""
    use_the_root_scheduler(pytester)
    for path in ("tests/test_long.py", "tests/test_longer.py", "tests/test_unknown.py",
                 "scenarios/test_pods_backend.py", "scenarios/test_kind_backend.py"):
        (pytester.path / path).parent.mkdir(exist_ok=True)
        (pytester.path / path).write_text(SLEEPER)
    cache = pytester.path / ".pytest_cache" / "v" / "heracles" / "group-seconds"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"tests/test_long.py": 50, "tests/test_longer.py": 100}))
    log = tmp_path / "clock.log"
    monkeypatch.setenv("CLOCK_LOG", str(log))
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=15)

    spans: dict[str, tuple[float, float]] = {}
    for line in log.read_text().splitlines():
        name, start, end = json.loads(line)
        first, last = spans.get(name, (start, end))
        spans[name] = (min(first, start), max(last, end))
    alone = [spans["test_pods_backend.py"], spans["test_kind_backend.py"]]
    others = [spans[f"test_{n}.py"] for n in ("long", "longer", "unknown")]
    assert min(s for s, _ in alone) >= max(e for _, e in others), spans
    first, second = sorted(alone)
    assert second[0] >= first[1], f"the real-node files overlapped: {spans}"
    assert spans["test_unknown.py"][0] >= min(e for _, e in others[:2]), spans
    recorded = json.loads(cache.read_text())
    assert recorded["real_node"] >= 2.4 and recorded["tests/test_unknown.py"] >= 1.2


PLATFORM_PROBE = '''
import json, os
def pytest_collection_finish(session):
    from conftest import xdist_group
    groups = {xdist_group(i.nodeid) for i in session.items if "platform" in i.fixturenames}
    with open(os.environ["PLATFORM_GROUPS_OUT"], "w") as out:
        json.dump(sorted(groups), out)
'''


def test_the_platform_groups_are_exactly_the_groups_using_the_session_platform(
        tmp_path: Path) -> None:
    """What the suite's collection says: groups with a test that requests `platform`,
    itself or through another fixture (eso, vault, kube ...)."""
    import os
    import subprocess
    import sys

    (tmp_path / "platform_probe.py").write_text(PLATFORM_PROBE)
    out = tmp_path / "groups.json"
    env = {**os.environ, "PLATFORM_GROUPS_OUT": str(out),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                           "-p", "no:cacheprovider", "-p", "platform_probe",
                           "-m", "not real_node"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert set(json.loads(out.read_text())) == conftest.PLATFORM_GROUPS


WHO = '''
import json, os, time
def test_0():
    time.sleep({sleep})
    with open(os.environ["CLOCK_LOG"], "a") as log:
        log.write(json.dumps([__file__.rsplit("/", 1)[-1],
                              os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
'''


def test_the_platform_groups_go_to_the_platform_worker(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real scheduler on two real workers: gw0 takes the groups that use the session
    platform, gw1 the others — one platform is started, not two."""
    use_the_root_scheduler(pytester)
    uses, own = ["scenarios/test_alerts.py", "scenarios/test_apply.py"], \
        ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py"]
    assert set(uses) <= conftest.PLATFORM_GROUPS and not set(own) & conftest.PLATFORM_GROUPS
    for path in uses + own:
        (pytester.path / path).parent.mkdir(exist_ok=True)
        (pytester.path / path).write_text(WHO.format(sleep=0.5 if path in uses else 0.8))
    log = tmp_path / "who.log"
    monkeypatch.setenv("CLOCK_LOG", str(log))
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider").assert_outcomes(
        passed=5)
    ran = dict(json.loads(line) for line in log.read_text().splitlines())
    assert {ran["test_alerts.py"], ran["test_apply.py"]} == {"gw0"}, ran
    assert ran["test_a.py"] == "gw1", ran
