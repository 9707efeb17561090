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
from typing import Any

import pytest

from harness.backends import BACKENDS, LOCAL_CAPABILITIES, missing_reason
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
    group.addoption("--harness-backend", choices=BACKENDS, default=None,
                    help="where the platform runs: local processes (default, or "
                         "$HERACLES_BACKEND), a kind cluster, or an existing cluster")
    group.addoption("--harness-existing-config", default=None,
                    help="the existing backend's endpoints file (default: "
                         "$HERACLES_EXISTING_CONFIG); see harness/backends/existing.py")
    group.addoption("--harness-vault-values", default=None,
                    help="your Vault Helm values: the staging/prod environments (local) and "
                         "the kind backend's Vault chart use their server configuration")
    group.addoption("--harness-time-scale", type=float, default=None,
                    help="divide alert `for:`, rule windows and scrape/evaluation "
                         "intervals by this (default: $HERACLES_TIME_SCALE or 60 in tests)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: runs against real components")
    config.addinivalue_line("markers", "portable: runs on every backend (local, kind, "
                            "existing); unmarked scenarios need the local backend")
    config.addinivalue_line("markers", "needs(*capabilities): skipped, with the reason, "
                            "on a backend without them (harness.backends.CAPABILITIES)")


def backend_name(config: pytest.Config) -> str:
    name = config.getoption("--harness-backend") or os.environ.get("HERACLES_BACKEND",
                                                                    "local")
    if name not in BACKENDS:
        raise pytest.UsageError(f"HERACLES_BACKEND={name!r}: choose one of "
                                f"{', '.join(BACKENDS)}")
    return str(name)


def existing_config_path(config: pytest.Config) -> str:
    path = config.getoption("--harness-existing-config") or os.environ.get(
        "HERACLES_EXISTING_CONFIG")
    if not path:
        raise pytest.UsageError("--harness-backend existing needs --harness-existing-config "
                                "PATH (or $HERACLES_EXISTING_CONFIG)")
    return str(path)


_CAPS = pytest.StashKey[frozenset]()


def backend_capabilities(config: pytest.Config) -> frozenset[str]:
    """What the chosen backend can do, known before anything starts."""
    if _CAPS not in config.stash:
        name = backend_name(config)
        if name == "existing":
            from harness.backends.existing import ExistingConfig

            try:
                caps = ExistingConfig.load(existing_config_path(config)).capabilities()
            except HarnessError as exc:
                raise pytest.UsageError(str(exc)) from None
        elif name == "kind":
            from harness.backends.kind import KIND_CAPABILITIES

            caps = KIND_CAPABILITIES
        else:
            caps = LOCAL_CAPABILITIES
        config.stash[_CAPS] = caps
    return config.stash[_CAPS]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A scenario needing what the backend lacks is skipped before any fixture runs."""
    if item.get_closest_marker("scenario") is None:
        return
    needed = {c for m in item.iter_markers("needs") for c in m.args}
    if item.get_closest_marker("portable") is None:
        needed.add("local-processes")
    reason = missing_reason(backend_name(item.config), needed,
                            backend_capabilities(item.config))
    if reason:
        pytest.skip(reason)


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
    values = config.getoption("--harness-vault-values")
    base = Settings(profile=profile, state_dir=Path(state), time_scale=scale,
                    components=parse_components(comps) if comps else None)
    return base.with_(vault_values=Path(values).resolve() if values else None)


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The environment for this session: brought up, or attached to when reused."""
    from harness.platform import Platform

    config = request.config
    backend = backend_name(config)
    if backend != "local":
        yield from _remote_platform(config, backend, tmp_path_factory)
        return
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


def _remote_platform(config: pytest.Config, backend: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The existing backend connects (a bad config or an unreachable endpoint fails the
    session, naming the file); the kind backend creates its cluster, or skips with the
    precise reason it cannot here (no Docker, images not present)."""
    settings = _settings(config, tmp_path_factory)
    if backend == "existing":
        from harness.backends.existing import ExistingConfig, ExistingPlatform

        try:
            plat: object = ExistingPlatform(ExistingConfig.load(existing_config_path(config)),
                                            settings).up()
        except HarnessError as exc:
            pytest.fail(redact(f"existing backend: {exc}"), pytrace=False)
        yield plat
        return
    from harness.backends.kind import KindPlatform, KindUnavailable

    kind = KindPlatform(settings)
    try:
        kind.up()
    except KindUnavailable as exc:
        pytest.skip(f"kind backend: {exc}")
    except HarnessError as exc:
        kind.down()  # what was created so far goes again
        pytest.fail(redact(f"kind backend: {exc}"), pytrace=False)
    yield kind
    if not config.getoption("--harness-keep"):
        kind.down()


@pytest.fixture(scope="session")
def kube(platform: object) -> object:
    """A Kubernetes client bound to the environment (typed APIs + kubectl)."""
    from harness.kubeclient import KubeClient

    return KubeClient(platform.kubeconfig, platform.kubectl)  # type: ignore[attr-defined]


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
    return platform.component("vault")  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def eso(platform: object, kube: object) -> object:
    """ESO helpers: apply, force_sync(ns, name), wait_synced, secret_value, metric."""
    from harness.secrets_sync import ExternalSecrets

    return ExternalSecrets(platform, kube)


@pytest.fixture(scope="session")
def cluster_secret_store(platform: object, eso: object) -> str:
    """The spec's ClusterSecretStore `vault-cluster-backend`, applied from fixtures/."""
    from harness.secrets_sync import ExternalSecrets

    assert isinstance(eso, ExternalSecrets)
    fixtures: Path = platform.settings.fixtures_dir  # type: ignore[attr-defined]
    eso.apply(fixtures / "gitops" / "secrets" / "cluster-secret-store.yaml")
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
    vault.client().sys.delete_policy(store["policy"])  # type: ignore[attr-defined]
    vault.delete_kubernetes_role(store["role"])  # type: ignore[attr-defined]
    vault.kv_delete_tree(namespace)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def prometheus(platform: object) -> object:
    """The environment's Prometheus: `query(promql)`, `alerts()`, `live_metric_names()`,
    `reload()`; rules are the customer's, time-scaled by --harness-time-scale."""
    return platform.component("prometheus")  # type: ignore[attr-defined]


@pytest.fixture
def alerts(platform: object) -> object:
    """Notifications Alertmanager delivered to the harness's receiver, from this test on:
    `alerts.wait_for_alert(name, "firing"|"resolved", timeout=...)`."""
    from harness.alerts import ReceivedAlerts

    return ReceivedAlerts(platform.component("alertmanager"))  # type: ignore[attr-defined]


@pytest.fixture
def faults(platform: object, kube: object, request: pytest.FixtureRequest
           ) -> Iterator[object]:
    """Fault primitives — local: kill, stop, paused, restart, wipe_data, latency,
    timeout, reset_peer, partition; kind/existing: Kubernetes operations (delete a Vault
    pod, scale ESO). Whatever a test leaves on is undone at teardown."""
    if backend_name(request.config) != "local":
        from harness.backends.existing import KubeFaults

        f: Any = KubeFaults(kube, platform.config.faults)  # type: ignore[attr-defined]
        yield f
        f.undo_all()
        return
    from harness.faults import Faults

    f = Faults(platform)
    yield f
    f.undo_all()
