"""The pytest plugin as a team meets it, in inner pytest sessions (pytester): ini options
beside the command-line ones, the overridable settings fixture, the prefixed aliases,
the one message a missing toolchain gives, the xdist stance, diagnostics in the JUnit XML
on a setup failure, and --harness-platform-repo bringing the shipped suites along."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.settings import Settings
from harness.testing import plugin
from harness.toolchain import Toolchain

CACHE = Settings().cache_dir

pytest_plugins = ["pytester"]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
          ) -> pytest.Pytester:
    for var in ("HERACLES_PROFILE", "HERACLES_STATE_DIR", "HERACLES_BACKEND",
                "HERACLES_TIME_SCALE", "PYTEST_XDIST_WORKER_COUNT",
                "HERACLES_REQUIRE_TOOLCHAIN"):
        monkeypatch.delenv(var, raising=False)
    # pytester moves HOME: keep the real toolchain cache in sight
    monkeypatch.setenv("HERACLES_CACHE_DIR", str(CACHE))
    return pytester


SETTINGS_TEST = """
def test_settings(heracles_settings):
    print("PROFILE", heracles_settings.profile, "SCALE", heracles_settings.time_scale)
"""


def test_ini_options_reach_the_settings_and_the_command_line_wins(inner: pytest.Pytester
                                                                   ) -> None:
    inner.makepyprojecttoml('[tool.pytest.ini_options]\nharness_profile = "staging"\n'
                            'harness_time_scale = "30"\n')
    inner.makepyfile(SETTINGS_TEST)
    result = inner.runpytest("-s")
    result.stdout.fnmatch_lines(["*PROFILE staging SCALE 30.0*"])
    result = inner.runpytest("-s", "--harness-profile", "prod")
    result.stdout.fnmatch_lines(["*PROFILE prod SCALE 30.0*"])


def test_a_wrong_ini_value_names_the_key_and_the_choices(inner: pytest.Pytester) -> None:
    inner.makepyprojecttoml('[tool.pytest.ini_options]\nharness_backend = "kindd"\n')
    inner.makepyfile(SETTINGS_TEST)
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*harness_backend = 'kindd': choose one of local*"])


def test_the_settings_fixture_is_overridden_in_a_conftest(inner: pytest.Pytester) -> None:
    inner.makeconftest("""
import pytest

@pytest.fixture(scope="session")
def heracles_settings(heracles_settings):
    return heracles_settings.with_(profile="prod")
""")
    inner.makepyfile(SETTINGS_TEST)
    inner.runpytest("-s").stdout.fnmatch_lines(["*PROFILE prod*"])


def test_every_fixture_has_its_prefixed_alias(inner: pytest.Pytester) -> None:
    result = inner.runpytest("--fixtures")
    for name in ("platform", "kube", "namespace", "vault", "eso", "cluster_secret_store",
                 "vault_store", "prometheus", "alerts", "faults", "environment_factory"):
        alias = {"platform": "heracles_env"}.get(name, f"heracles_{name}")
        result.stdout.fnmatch_lines([f"{name} *", f"{alias} *"], consecutive=False)
    result.stdout.fnmatch_lines(["heracles_settings *"])


def test_without_the_toolchain_scenarios_skip_with_one_message(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERACLES_CACHE_DIR", str(tmp_path / "no-toolchain"))
    inner.makepyfile("""
def test_one(heracles_env): pass
def test_two(platform, kube): pass
def test_plain(): pass
""")
    result = inner.runpytest("-ra")
    result.assert_outcomes(passed=1, skipped=2)
    out = result.stdout.str()
    assert "Traceback" not in out and "Error" not in out.replace("HarnessError", "")
    header = [line for line in out.splitlines()
              if line.startswith("heracles-harness: the toolchain is not installed")]
    assert len(header) == 1 and "harness toolchain install" in header[0], out


def test_a_required_toolchain_that_is_missing_fails_instead_of_skipping(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CI sets HERACLES_REQUIRE_TOOLCHAIN: a machine without the toolchain must not go
    green by skipping every scenario."""
    monkeypatch.setenv("HERACLES_CACHE_DIR", str(tmp_path / "no-toolchain"))
    monkeypatch.setenv("HERACLES_REQUIRE_TOOLCHAIN", "1")
    inner.makepyfile("""
from harness.settings import Settings
from harness.toolchain import Toolchain

def test_helm():
    Toolchain(Settings().cache_dir).binary("helm", "helm")
""")
    result = inner.runpytest("-ra")
    result.assert_outcomes(failed=1)
    assert "the toolchain is not installed" not in result.stdout.str()


def test_a_bad_heracles_variable_stops_the_session_naming_it(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERACLES_PROFILE", "stagin")
    inner.makepyfile("def test_one(heracles_env): pass\n")
    result = inner.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown profile 'stagin'*"])


def test_setup_failure_diagnostics_reach_the_junit_xml(inner: pytest.Pytester,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    inner.makeconftest("""
import pytest

class Env:
    def diagnostics(self, log_lines=20):
        return "component health: etcd ok, vault sealed"

@pytest.fixture(scope="session")
def platform():
    return Env()

@pytest.fixture
def broken(platform):
    raise RuntimeError("fixture setup failed")
""")
    inner.makepyfile("def test_x(broken): pass\ndef test_unit(): assert False\n")
    monkeypatch.setenv("HERACLES_REQUIRE_TOOLCHAIN", "1")  # a fake platform: run, always
    junit = tmp_path / "junit.xml"
    result = inner.runpytest(f"--junitxml={junit}")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(["*heracles diagnostics*", "*vault sealed*"])
    cases = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
             for c in ET.parse(junit).iter("testcase")}
    assert "vault sealed" in (cases["test_x"].get("heracles_diagnostics") or ""), cases
    assert "heracles_diagnostics" not in cases["test_unit"]  # not a test of the platform


def test_xdist_workers_share_an_environment_only_when_it_is_named(
        monkeypatch: pytest.MonkeyPatch, inner: pytest.Pytester) -> None:
    config = inner.parseconfig()
    assert not plugin.shared_environment(config)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert not plugin.shared_environment(config)  # each worker its own environment
    assert plugin.shared_environment(inner.parseconfig("--harness-reuse"))
    monkeypatch.setenv("HERACLES_STATE_DIR", "/tmp/somewhere")
    assert plugin.shared_environment(config)


def test_faults_are_refused_on_a_shared_environment(inner: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("HERACLES_REQUIRE_TOOLCHAIN", "1")  # a fake platform: run, always
    inner.makeconftest("""
import pytest

@pytest.fixture(scope="session")
def platform():
    raise AssertionError("must not be started: faults are refused first")
""")
    inner.makepyfile("def test_f(faults): pass\n")
    result = inner.runpytest("--harness-reuse", "-ra")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*faults are refused on an environment shared by "
                                 "pytest-xdist workers*"])


def test_platform_repo_brings_the_shipped_suites(inner: pytest.Pytester, tmp_path: Path
                                                 ) -> None:
    repo = tmp_path / "team"
    repo.mkdir()
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    inner.makepyfile("def test_own(): pass\n")
    result = inner.runpytest("--co", "-q", f"--harness-platform-repo={repo}")
    out = result.stdout.str()
    assert "test_own" in out and "test_platform_repo.py::" in out, out


def test_a_test_reaching_for_a_missing_binary_skips_when_no_toolchain_is_installed(
        inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh clone: the unit tests that call the toolchain skip with the one message."""
    inner.makepyfile("""
from harness.settings import Settings
from harness.toolchain import Toolchain

def test_helm():
    Toolchain(Settings().cache_dir).binary("helm", "helm")
""")
    if not Toolchain(CACHE).problem("helm"):
        result = inner.runpytest("-ra")
        result.assert_outcomes(passed=1)  # installed here: it runs
    monkeypatch.setenv("HERACLES_CACHE_DIR", str(tmp_path / "none"))
    result = inner.runpytest("-ra")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the toolchain is not installed*harness toolchain install*"])


LEAKY_TEST = """
def run(command, input=None):
    assert input is None, "the command failed"

def test_a_command_fed_a_token_fails():
    token = "s." + "Q7vTz2LmXp9RkD4wYb8NcJ3f"
    print("stdin was", token)
    run("vault status", input=token + "\\\\n")
"""


def test_a_failing_frames_secret_arguments_reach_no_report(inner: pytest.Pytester) -> None:
    """pytest prints the arguments of every frame of a failure: a root token passed as a
    command's stdin reached a nested suite's JUnit XML in CI (2026-12-03)."""
    token = "s." + "Q7vTz2LmXp9RkD4wYb8NcJ3f"
    inner.makepyfile(LEAKY_TEST)
    junit = inner.path / "junit.xml"
    result = inner.runpytest("-p", "no:cacheprovider", f"--junitxml={junit}", "-rA")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    xml = junit.read_text()
    assert token not in out and token not in xml
    assert "the command failed" in out and "the command failed" in xml
    assert "***REDACTED***" in out and "***REDACTED***" in xml
    assert "stdin was ***REDACTED***" in out
