"""pytest plugin: the `platform`, `kube` and `namespace` fixtures, options, diagnostics.

Without --harness-reuse each session gets its own state directory and its own run id,
so two sessions on one machine never share ports or processes, and the session's
environment is torn down at the end (reaped by the next run if pytest is SIGKILLed).
With --harness-reuse the environment lives in a stable state directory and is left
running; the next session attaches to it in about a second.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.runtime.state import StateDir
from harness.settings import PROFILES, Settings, parse_components
from harness.wait import wait_records


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("heracles", "heracles-harness")
    group.addoption("--harness-profile", choices=PROFILES, default=None,
                    help="environment profile (default: $HERACLES_PROFILE or dev)")
    group.addoption("--harness-reuse", action="store_true",
                    help="attach to a running environment and leave it running afterwards")
    group.addoption("--harness-keep", action="store_true",
                    help="do not tear the session's environment down at the end")
    group.addoption("--harness-state-dir", default=None,
                    help="state directory (default: per-session temporary, or a stable one "
                         "with --harness-reuse)")
    group.addoption("--harness-components", default=None,
                    help="comma-separated components (default: the profile's)")
    group.addoption("--harness-platform-repo", action="append", default=None,
                    help="a GitOps tree for the generic suites (repeatable; default: "
                         "fixtures/gitops and fixtures/samples/kustomize-platform)")
    group.addoption("--harness-time-scale", type=float, default=None,
                    help="divide alert `for:`, rule windows and scrape/evaluation "
                         "intervals by this (default: $HERACLES_TIME_SCALE or 60 in tests)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: runs against real components")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"platform", "staging"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.scenario)


def _settings(config: pytest.Config, tmp_factory: pytest.TempPathFactory) -> Settings:
    profile = config.getoption("--harness-profile") or os.environ.get("HERACLES_PROFILE", "dev")
    state = config.getoption("--harness-state-dir")
    if state is None:
        if config.getoption("--harness-reuse"):
            state = str(Settings(profile=profile).state_dir.parent / f"pytest-{profile}")
        else:
            state = str(tmp_factory.mktemp("heracles-state"))
    comps = config.getoption("--harness-components")
    scale = config.getoption("--harness-time-scale") or float(
        os.environ.get("HERACLES_TIME_SCALE") or 60)
    return Settings(profile=profile, state_dir=Path(state), time_scale=scale,
                    components=parse_components(comps) if comps else None)


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The environment for this session: brought up, or attached to when reused."""
    from harness.platform import Platform

    config = request.config
    reuse = config.getoption("--harness-reuse")
    keep = config.getoption("--harness-keep") or reuse
    try:
        settings = _settings(config, tmp_path_factory)
        existing = StateDir(settings.state_dir).load()
        if not reuse and existing and existing.get("status") == "up":
            # Someone else's running environment (harness up): use it, never destroy it.
            print(f"\nheracles: attaching to the running environment in {settings.state_dir}"
                  " (left running afterwards)")
            reuse = keep = True
        plat = Platform(settings)
        plat.up(mode="detached" if reuse else "session")
    except HarnessError as exc:
        pytest.fail(redact(f"heracles-harness could not bring the environment up: {exc}"),
                    pytrace=False)
    yield plat
    if keep:
        plat.registry.set_mode(plat.record["run_id"], "detached")
        print(f"\nheracles: environment left running in {settings.state_dir}")
    else:
        plat.down()


@pytest.fixture(scope="session")
def kube(platform: object) -> object:
    """A Kubernetes client bound to the environment (typed APIs + kubectl)."""
    from harness.kubeclient import KubeClient
    from harness.platform import Platform

    assert isinstance(platform, Platform)
    kubectl = platform.toolchain.binary("kubernetes", "kubectl")
    return KubeClient(platform.kubeconfig, str(kubectl))


@pytest.fixture
def namespace(kube: object, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace unique to this test, deleted afterwards."""
    from kubernetes import client

    from harness.kubeclient import KubeClient

    assert isinstance(kube, KubeClient)
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    name = f"t-{base.strip('-')}-{secrets.token_hex(2)}"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"heracles.dev/test": "true"})))
    yield name
    try:
        kube.core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call":
        return
    waits = wait_records(clear=True)
    if waits:
        item.user_properties.append(
            ("waits", [(w.description, round(w.seconds, 2), w.outcome) for w in waits]))
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "platform" in funcargs:
        from harness import diagnostics

        text = diagnostics.collect(funcargs["platform"], funcargs.get("kube"),
                                   funcargs.get("namespace"))
        report.sections.append(("heracles diagnostics", text))


@pytest.fixture(scope="session")
def vault(platform: object) -> object:
    """The environment's Vault (OpenBao): `vault.client()` is an hvac client with the
    root token; `vault.kv_put(path, k=v)` / `vault.kv_get(path)` as the runbook does."""
    from harness.platform import Platform

    assert isinstance(platform, Platform)
    return platform.component("vault")


@pytest.fixture(scope="session")
def eso(platform: object, kube: object) -> object:
    """ESO helpers: apply, force_sync(ns, name), wait_synced, secret_value, metric."""
    from harness.secrets_sync import ExternalSecrets

    return ExternalSecrets(platform, kube)


@pytest.fixture(scope="session")
def cluster_secret_store(platform: object, eso: object) -> str:
    """The spec's ClusterSecretStore `vault-cluster-backend`, applied from fixtures/."""
    from harness.platform import Platform
    from harness.secrets_sync import ExternalSecrets

    assert isinstance(platform, Platform) and isinstance(eso, ExternalSecrets)
    eso.apply(platform.settings.fixtures_dir / "gitops" / "secrets" /
              "cluster-secret-store.yaml")
    return "vault-cluster-backend"


@pytest.fixture
def vault_store(platform: object, vault: object, eso: object,
                namespace: str) -> Iterator[dict]:
    """A namespaced SecretStore `vault` for this test's own Vault paths
    (secret/<namespace>/...), with its own least-privilege policy and kubernetes-auth
    role — so a test can rotate or break access to its paths without touching the spec's
    store or anyone else's secrets (see secrets_sync.make_test_store)."""
    from harness.secrets_sync import ExternalSecrets, make_test_store

    assert isinstance(eso, ExternalSecrets)
    store = make_test_store(vault, eso, namespace)
    yield store
    client = vault.client()  # type: ignore[attr-defined]
    client.sys.delete_policy(store["policy"])
    client.delete(f"auth/kubernetes/role/{store['role']}")
    vault.kv_delete_tree(namespace)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def prometheus(platform: object) -> object:
    """The environment's Prometheus: `query(promql)`, `alerts()`, `live_metric_names()`,
    `reload()`; rules are the customer's, time-scaled by --harness-time-scale."""
    from harness.platform import Platform

    assert isinstance(platform, Platform)
    return platform.component("prometheus")


@pytest.fixture
def alerts(platform: object) -> object:
    """Notifications Alertmanager delivered to the harness's receiver, from this test on:
    `alerts.wait_for_alert(name, "firing"|"resolved", timeout=...)`."""
    from harness.alerts import ReceivedAlerts
    from harness.platform import Platform

    assert isinstance(platform, Platform)
    return ReceivedAlerts(platform.component("alertmanager"))


@pytest.fixture
def faults(platform: object) -> Iterator[object]:
    """Fault primitives (kill, stop, paused, restart, wipe_data, latency, timeout,
    reset_peer, partition); whatever a test leaves on is undone at teardown."""
    from harness.faults import Faults

    f = Faults(platform)
    yield f
    f.undo_all()
