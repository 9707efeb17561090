"""pytest plugin: options, markers, the fixtures (`platform`, `kube`, `namespace`,
`vault`, `eso`, `prometheus`, `alerts`, `faults`, `environment_factory`, ...), capability
skips and diagnostics on failure. Fixtures are typed with the Environment interface,
so they mean the same on every backend.

Without --harness-reuse each session gets its own state directory and its own run id,
so two sessions on one machine never share ports or processes, and the session's
environment is torn down at the end (reaped by the next run if pytest is SIGKILLed).
With --harness-reuse the environment lives in a stable state directory and is left
running; the next session attaches to it in about a second.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from harness.backends.base import BACKENDS, LOCAL_CAPABILITIES, Environment, Faults, missing_reason
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.runtime.state import StateDir
from harness.settings import PROFILES, Settings
from harness.testing.factory import EnvironmentFactory, settings_from_options
from harness.wait import wait_records

if TYPE_CHECKING:
    from harness.clients.alerts import ReceivedAlerts
    from harness.clients.eso import ExternalSecretsClient
    from harness.clients.kube import KubeClient
    from harness.clients.prometheus import PrometheusAPI
    from harness.clients.vault import VaultAdmin


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
                         "$HERACLES_BACKEND), Pods from its charts on the real node "
                         "(pods), a kind cluster, or an existing cluster")
    group.addoption("--harness-existing-config", default=None,
                    help="the existing backend's endpoints file (default: "
                         "$HERACLES_EXISTING_CONFIG); see harness/backends/existing.py")
    group.addoption("--harness-vault-values", default=None,
                    help="your Vault Helm values: the staging/prod environments (local) and "
                         "the kind backend's Vault chart use their server configuration")
    group.addoption("--harness-soak", type=float, default=0, metavar="SECONDS",
                    help="run the soak scenarios (marked `soak`) for this long; "
                         "without it they are skipped")
    group.addoption("--harness-kind-image", choices=("auto", "local", "official"),
                    default=None, help="the kind backend's node image: local (built "
                    "here), official (kindest/node, pulled), auto (local when built; "
                    "default, or $HERACLES_KIND_IMAGE)")
    group.addoption("--harness-time-scale", type=float, default=None,
                    help="divide alert `for:`, rule windows and scrape/evaluation "
                         "intervals by this (default: $HERACLES_TIME_SCALE or 60 in tests)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: runs against real components")
    config.addinivalue_line("markers", "portable: runs on every backend (local, kind, "
                            "existing); unmarked scenarios need the local backend")
    config.addinivalue_line("markers", "needs(*capabilities): skipped, with the reason, "
                            "on a backend without them (harness.backends.CAPABILITIES)")
    config.addinivalue_line("markers", "soak: long, bounded; opt-in with --harness-soak "
                            "SECONDS")


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


_CAPS = pytest.StashKey[frozenset[str]]()


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
            from harness.backends.kind.environment import kind_capabilities

            caps = kind_capabilities()
        elif name == "pods":
            from harness.backends.pods.environment import PODS_CAPABILITIES

            caps = PODS_CAPABILITIES
        else:
            caps = LOCAL_CAPABILITIES
        config.stash[_CAPS] = caps
    return config.stash[_CAPS]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A scenario needing what the backend lacks is skipped before any fixture runs;
    a soak runs only when asked for."""
    if item.get_closest_marker("soak") and not item.config.getoption("--harness-soak"):
        pytest.skip("soak scenario: opt in with --harness-soak SECONDS")
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


@pytest.fixture(scope="session")
def environment_factory(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[EnvironmentFactory]:
    """Local environments of a suite's own (another profile, other components, a second
    one): `with environment_factory.environment(profile="staging") as env: ...`."""
    factory = EnvironmentFactory(request.config, tmp_path_factory)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The environment for this session: brought up, or attached to when reused."""
    from harness.backends.local.environment import LocalEnvironment

    config = request.config
    backend = backend_name(config)
    if backend != "local":
        yield from _remote_platform(config, backend, tmp_path_factory)
        return
    reuse = config.getoption("--harness-reuse")
    keep = config.getoption("--harness-keep") or reuse
    try:
        settings = settings_from_options(config, tmp_path_factory)
        if not reuse and _someone_elses(settings):
            # Someone else's running environment (harness up): use it, never destroy it.
            print(f"\nheracles: attaching to the running environment in {settings.state_dir}"
                  " (left running afterwards)")
            reuse = keep = True
        plat = LocalEnvironment(settings)
        plat.up(mode="detached" if reuse else "session")
        wait_records(clear=True)  # the start-up's waits are not the first test's
    except HarnessError as exc:
        pytest.fail(redact(f"heracles-harness could not bring the environment up: {exc}"),
                    pytrace=False)
    yield plat
    if keep:
        plat.keep_running()
        print(f"\nheracles: environment left running in {settings.state_dir}")
    else:
        plat.down()


def _someone_elses(settings: Settings) -> bool:
    """Whether the state directory holds a running environment this session must leave
    running: one started detached (`harness up`). A session's environment whose pytest
    died is reaped first — it is nobody's, and must not be adopted as a detached one
    (that leaked a whole environment). A live session's is refused."""
    from harness.backends.local.record import EnvironmentRecord
    from harness.runtime.registry import RunRegistry

    registry = RunRegistry(settings.registry_dir)
    registry.reap()
    record = EnvironmentRecord.load(StateDir(settings.state_dir))
    if record is None or not record.is_live(registry):
        return False
    run = registry.get(record.run_id)
    if run is not None and run.mode != "detached":
        raise HarnessError(f"the environment in {settings.state_dir} belongs to a running "
                           f"session (pid {run.owner_pid}); choose another "
                           "--harness-state-dir")
    return True


def _remote_platform(config: pytest.Config, backend: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The existing backend connects (a bad config or an unreachable endpoint fails the
    session, naming the file); the kind backend creates its cluster, or skips with the
    precise reason it cannot here (no Docker, images not present)."""
    settings = settings_from_options(config, tmp_path_factory)
    if backend == "existing":
        from harness.backends.existing import ExistingConfig, ExistingEnvironment

        try:
            plat = ExistingEnvironment(ExistingConfig.load(existing_config_path(config)),
                                       settings).up()
        except HarnessError as exc:
            pytest.fail(redact(f"existing backend: {exc}"), pytrace=False)
        yield plat
        return
    from harness.backends.install.environment import KindUnavailable
    from harness.backends.kind.environment import KindEnvironment
    from harness.backends.pods.environment import PodsEnvironment
    from harness.runtime.signals import interrupts_deferred

    kind = PodsEnvironment(settings) if backend == "pods" else KindEnvironment(settings)
    try:
        kind.up()
    except KindUnavailable as exc:
        kind.down()
        pytest.skip(f"{backend} backend: {exc}")
    except HarnessError as exc:
        kind.down()  # what was created so far goes again
        pytest.fail(redact(f"{backend} backend: {exc}"), pytrace=False)
    except BaseException:
        with interrupts_deferred():  # Ctrl-C while it starts: nothing left running
            kind.down()
        raise
    yield kind
    if not config.getoption("--harness-keep"):
        kind.down()


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    """How long a soak scenario runs (--harness-soak)."""
    return float(request.config.getoption("--harness-soak"))


@pytest.fixture(scope="session")
def kube(platform: Environment) -> KubeClient:
    """A Kubernetes client bound to the environment (typed APIs + kubectl)."""
    return platform.kube_client()


@pytest.fixture
def namespace(kube: KubeClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace unique to this test, deleted afterwards."""
    from kubernetes import client

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Every wait's duration goes into the test's user_properties; a failed scenario
    gets a redacted "heracles diagnostics" section."""
    report = yield
    if report.when != "call":
        return report
    waits = wait_records(clear=True)
    if waits:
        item.user_properties.append(
            ("waits", [(w.description, round(w.seconds, 2), w.outcome) for w in waits]))
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "platform" in funcargs:
        from harness.testing import diagnostics

        text = diagnostics.collect(funcargs["platform"], funcargs.get("kube"),
                                   funcargs.get("namespace"))
        report.sections.append(("heracles diagnostics", text))
    return report


@pytest.fixture(scope="session")
def vault(platform: Environment) -> VaultAdmin:
    """The environment's Vault (OpenBao): `vault.client()` is an hvac client with the
    root token; `vault.kv_put(path, k=v)` / `vault.kv_get(path)` as the runbook does."""
    return platform.vault


@pytest.fixture(scope="session")
def eso(platform: Environment, kube: KubeClient) -> ExternalSecretsClient:
    """ESO helpers: apply, force_sync(ns, name), wait_synced, secret_value, metric."""
    from harness.clients.eso import ExternalSecretsClient

    return ExternalSecretsClient(platform, kube)


@pytest.fixture(scope="session")
def cluster_secret_store(platform: Environment, eso: ExternalSecretsClient) -> str:
    """The spec's ClusterSecretStore `vault-cluster-backend`, applied from fixtures/."""
    eso.apply(platform.settings.fixtures_dir / "gitops" / "secrets" / "cluster-secret-store.yaml")
    return "vault-cluster-backend"


@pytest.fixture
def vault_store(vault: VaultAdmin, eso: ExternalSecretsClient,
                namespace: str) -> Iterator[dict[str, str]]:
    """A namespaced SecretStore `vault` for this test's own Vault paths
    (secret/<namespace>/...), with its own least-privilege policy and kubernetes-auth
    role — so a test can rotate or break access to its paths without touching the spec's
    store or anyone else's secrets (see harness.clients.eso.make_test_store)."""
    from harness.clients.eso import make_test_store

    store = make_test_store(vault, eso, namespace)
    yield store
    vault.client().sys.delete_policy(store["policy"])
    vault.delete_kubernetes_role(store["role"])
    vault.kv_delete_tree(namespace)


@pytest.fixture(scope="session")
def prometheus(platform: Environment) -> PrometheusAPI:
    """The environment's Prometheus: `query(promql)`, `alerts()`, `live_metric_names()`,
    `reload()`; rules are the customer's, time-scaled by --harness-time-scale."""
    return platform.prometheus()


@pytest.fixture
def alerts(platform: Environment) -> ReceivedAlerts:
    """Notifications Alertmanager delivered to the harness's receiver, from this test on:
    `alerts.wait_for_alert(name, "firing"|"resolved", timeout=...)`."""
    return platform.alerts()


@pytest.fixture
def faults(platform: Environment, kube: KubeClient) -> Iterator[Faults]:
    """Fault primitives — local: kill, stop, paused, restart, wipe_data, latency,
    timeout, reset_peer, partition; kind/existing: Kubernetes operations (delete a Vault
    pod, scale ESO). Whatever a test leaves on is undone at teardown."""
    f = platform.faults(kube)
    yield f
    f.undo_all()
