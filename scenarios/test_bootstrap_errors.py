"""`harness gitops bootstrap` when things are wrong around it (issue 13): the Prometheus
Operator CRDs missing, and a stray Application in argocd left by an earlier run.

The module has an environment of its own without Prometheus (etcd, kube, vault, eso,
git, argocd), so the CRDs are really absent at first; the tests run in order: a stray
Application is created first and stays there, the CRDs are missing, then installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.gitops.deploy import bootstrap
from harness.testing import (
    Applications,
    EnvironmentFactory,
    ExternalSecretsClient,
    LocalEnvironment,
)
from harness.wait import wait_records

pytestmark = pytest.mark.slow

STRAY = "stray-leftover"
TREE = {"platform", "observability", "secrets", "workload"}
CRD_KINDS = ("monitoring.coreos.com/PrometheusRule", "monitoring.coreos.com/ServiceMonitor")


@pytest.fixture(scope="module")
def env(environment_factory: EnvironmentFactory) -> Iterator[LocalEnvironment]:
    with environment_factory.environment(
            "bootstrap-errors", profile="dev",
            components=("etcd", "kube", "vault", "eso", "git", "argocd")) as plat:
        yield plat


@pytest.fixture(scope="module")
def apps(env: LocalEnvironment) -> Applications:
    return Applications(env.kube_client())


def harness_cli(env: LocalEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    """`harness --state-dir <env> ARGS` as a user runs it (attaches to the environment)."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "--state-dir",
                           str(env.settings.state_dir), *args],
                          capture_output=True, text=True, timeout=600)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def stray(env: LocalEnvironment, apps: Applications) -> str:
    """An Application another run left in argocd (as `harness apply --platform-repo`
    does), pointing at a path the repository does not have: it never syncs."""
    ExternalSecretsClient(env, env.kube_client()).apply_object({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": STRAY, "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "http://git.heracles.svc.cluster.local/platform.git",
                            "targetRevision": "dev", "path": "never/there"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": "stray"},
                 "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}, None)
    apps.wait_condition(STRAY, "app path does not exist", timeout=60)
    return STRAY


def test_missing_crds_are_named_at_once(env: LocalEnvironment, stray: str) -> None:
    """The observability child needs PrometheusRule/ServiceMonitor: the bootstrap gives
    up through the Hopeless path (no waiting out the timeout), naming kinds and fix."""
    with pytest.raises(HarnessError) as caught:
        bootstrap(env, "dev", timeout=180)
    message = str(caught.value)
    assert message.startswith("missing CRDs: Application observability needs "), message
    for kind in CRD_KINDS:
        assert kind in message
    assert "harness crds install prometheus-operator" in message
    assert stray not in message  # not in the applied tree: not judged
    [wait] = [w for w in wait_records() if w.description.startswith("app-of-apps platform")]
    assert wait.outcome == "hopeless"


def test_the_command_exits_2_with_one_line_naming_the_crds(env: LocalEnvironment) -> None:
    res = harness_cli(env, "gitops", "bootstrap")
    assert res.returncode == 2, res.stderr
    [line] = error_lines(res.stderr)
    assert "missing CRDs" in line
    for kind in CRD_KINDS:
        assert kind in line
    assert "fix: harness crds install prometheus-operator" in line
    assert "Traceback" not in res.stderr


def test_a_stray_application_does_not_block_bootstrap(env: LocalEnvironment,
                                                      apps: Applications,
                                                      stray: str) -> None:
    """Only the app-of-apps applied and the Applications it owns are awaited; the stray
    one (never synced) is still there and still not Synced."""
    env.install_crds("prometheus-operator")
    done = bootstrap(env, "dev", timeout=180)
    assert set(done.applications) == TREE
    assert all(st["sync"] == "Synced" and st["health"] == "Healthy"
               for st in done.applications.values())
    assert done.app_of_apps == Path(env.settings.fixtures_dir) / "gitops" / "argocd" / \
        "dev" / "app-of-apps.yaml"
    assert stray in apps.names()
    assert apps.state(stray)["sync"] != "Synced"


def test_the_command_passes_with_the_stray_application_there(env: LocalEnvironment,
                                                             apps: Applications,
                                                             stray: str) -> None:
    res = harness_cli(env, "gitops", "bootstrap")
    assert res.returncode == 0, res.stderr
    for name in TREE:
        assert name in res.stdout
    assert stray not in res.stdout
    assert apps.state(stray)["sync"] != "Synced"
