"""pytest plugin: options (command line and ini), markers, the fixtures (`platform`,
`kube`, `namespace`, `vault`, `eso`, `prometheus`, `alerts`, `faults`,
`environment_factory`, ..., each also under a `heracles_` name: `heracles_env`,
`heracles_kube`, ...; and the overridable `heracles_settings`), capability skips and
diagnostics on failure. Fixtures are typed with the Environment interface, so they mean
the same on every backend.

pytest-xdist: each worker brings up its own environment (own state directory, ports and
run id), unless the environment is shared — --harness-reuse or a named state directory —
where the first worker starts it and the others attach, one at a time, and the `faults`
fixture is refused (a fault would break the other workers' tests).

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
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.backends.base import BACKENDS, LOCAL_CAPABILITIES, Environment, Faults, missing_reason
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.testing.factory import EnvironmentFactory, settings_from_options
from harness.testing.options import OPTIONS, option
from harness.wait import wait_records

if TYPE_CHECKING:
    from harness.clients.alerts import ReceivedAlerts
    from harness.clients.eso import ExternalSecretsClient
    from harness.clients.kube import KubeClient
    from harness.clients.prometheus import PrometheusAPI
    from harness.clients.vault import VaultAdmin


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("heracles", "heracles-harness")
    for name, spec in OPTIONS.items():
        default: list[str] | None = [] if spec.get("action") == "append" else None
        group.addoption(f"--harness-{name}", default=default, **spec)
        ini_type = {"store_true": "bool", "append": "linelist"}.get(spec.get("action", ""),
                                                                    "string")
        parser.addini(f"harness_{name.replace('-', '_')}", type=ini_type,  # type: ignore[arg-type]
                      default=None, help=f"as --harness-{name}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: runs against real components")
    config.addinivalue_line("markers", "slow: builds or starts more than one environment")
    config.addinivalue_line("markers", "toolchain: needs the toolchain's binaries (through "
                            "a subprocess too): skipped, with the one install message, "
                            "where none is installed")
    config.addinivalue_line("markers", "portable: runs on every backend (local, kind, "
                            "existing); unmarked scenarios need the local backend")
    config.addinivalue_line("markers", "needs(*capabilities): skipped, with the reason, "
                            "on a backend without them (harness.backends.CAPABILITIES)")
    config.addinivalue_line("markers", "soak: long, bounded; opt-in with --harness-soak "
                            "SECONDS")
    try:  # every option and HERACLES_* variable checked before anything starts
        for name in OPTIONS:
            option(config, name)
        Settings()
        backend_name(config)
    except HarnessError as exc:
        raise pytest.UsageError(f"heracles-harness: {exc}") from None
    if option(config, "platform-repo"):
        add_shipped_suites(config)


def add_shipped_suites(config: pytest.Config) -> None:
    """--harness-platform-repo runs the generic suites shipped in the package (every
    Application renders and syncs, every ExternalSecret syncs, every rule's metrics
    exist) in this session, in whatever repository pytest runs — unless the arguments
    already include them (this project's own test paths do)."""
    from harness.resources import package_path

    suites = package_path("testing/suites").resolve()
    given = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    if not any(g == suites or g in suites.parents or suites in g.parents for g in given):
        config.args.append(str(suites))


def xdist_workers() -> int:
    """How many pytest-xdist workers this session has (0: not under xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)


def shared_environment(config: pytest.Config) -> bool:
    """Whether pytest-xdist workers share one environment: with --harness-reuse, or a
    state directory named by --harness-state-dir / $HERACLES_STATE_DIR. Otherwise each
    worker brings up its own (its own state directory, ports and run id)."""
    return xdist_workers() > 1 and bool(option(config, "reuse") or option(config, "state-dir")
                                        or os.environ.get("HERACLES_STATE_DIR"))


FAULTS_REFUSED = ("faults are refused on an environment shared by pytest-xdist workers "
                  "(--harness-reuse or a named state directory): a fault would break the "
                  "other workers' tests; run fault scenarios without -n, or let each worker "
                  "bring up its own environment")

TOOLCHAIN_CORE = ("etcd", "kubernetes", "openbao", "external-secrets")
"""What every local environment runs: without these no scenario can start."""
_TOOLCHAIN = pytest.StashKey[str]()


def toolchain_problem(config: pytest.Config) -> str:
    """Why the scenarios cannot start here ('' when they can): the toolchain is not
    installed at all — every core entry missing, as on a fresh clone. A stale or broken
    entry is not that: its tests fail, naming it. So does a missing toolchain where
    $HERACLES_REQUIRE_TOOLCHAIN is set (CI), so a machine without one never passes by
    skipping. The existing backend starts nothing and needs no toolchain."""
    if _TOOLCHAIN not in config.stash:
        problem = ""
        required = os.environ.get("HERACLES_REQUIRE_TOOLCHAIN", "") not in ("", "0")
        if backend_name(config) != "existing" and not required:
            from harness.toolchain import Toolchain

            statuses = Toolchain(Settings().cache_dir).status(list(TOOLCHAIN_CORE),
                                                              deep=False)
            if all(s.state == "missing" for s in statuses):
                problem = ", ".join(f"{s.name} {s.version}" for s in statuses) + " not built"
        config.stash[_TOOLCHAIN] = (
            f"heracles-harness: the toolchain is not installed ({problem}); install it with "
            "`./deploy-local.sh --setup-only` in a checkout, or `harness toolchain install`"
        ) if problem else ""
    return config.stash[_TOOLCHAIN]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The backend, and — once, here — why the scenarios will be skipped, if they are."""
    lines = [f"heracles-harness: backend {backend_name(config)}"]
    problem = toolchain_problem(config)
    return [*lines, f"{problem}: the scenarios are skipped"] if problem else lines


def backend_name(config: pytest.Config) -> str:
    name = option(config, "backend") or os.environ.get("HERACLES_BACKEND", "local")
    if name not in BACKENDS:
        raise pytest.UsageError(f"HERACLES_BACKEND={name!r}: choose one of "
                                f"{', '.join(BACKENDS)}")
    return str(name)


def existing_config_path(config: pytest.Config) -> str:
    path = option(config, "existing-config") or os.environ.get("HERACLES_EXISTING_CONFIG")
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


@pytest.hookimpl(wrapper=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_toolchain(item: pytest.Item) -> Generator[None, None, None]:
    """Where the whole toolchain is not installed (a fresh clone), a test that reaches
    for one of its binaries is skipped with the session's one message, not an error;
    where it is installed, a missing piece stays a failure."""
    return (yield from _toolchain_skips(item))


@pytest.hookimpl(wrapper=True, specname="pytest_runtest_call")
def pytest_runtest_call_toolchain(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _toolchain_skips(item))


def _toolchain_skips(item: pytest.Item) -> Generator[None, None, None]:
    from harness.errors import ToolchainMissing

    try:
        return (yield)
    except ToolchainMissing:
        if problem := toolchain_problem(item.config):
            pytest.skip(problem)
        raise


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A scenario needing what the backend lacks is skipped before any fixture runs;
    a soak runs only when asked for."""
    if {"faults", "heracles_faults"} & set(getattr(item, "fixturenames", ())) and \
            shared_environment(item.config):
        pytest.skip(FAULTS_REFUSED)  # before the environment fixtures run
    if item.get_closest_marker("soak") and not option(item.config, "soak"):
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


ENVIRONMENT_FIXTURES = {"platform", "heracles_env", "staging", "environment_factory",
                        "heracles_environment_factory"}
"""A test asking for one of these needs the toolchain (on a backend that starts things)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using an environment are scenarios; without the toolchain every one of them
    is skipped with the same one reason (named once in the header), not N errors."""
    problem = None
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if {"platform", "heracles_env", "staging"} & names:
            item.add_marker(pytest.mark.scenario)
        if names & ENVIRONMENT_FIXTURES or item.get_closest_marker("scenario") or \
                item.get_closest_marker("toolchain"):
            if problem is None:
                problem = toolchain_problem(config)
            if problem:
                item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture(scope="session")
def environment_factory(request: pytest.FixtureRequest,
                        tmp_path_factory: pytest.TempPathFactory,
                        heracles_settings: Settings) -> Iterator[EnvironmentFactory]:
    """Local environments of a suite's own (another profile, other components, a second
    one): `with environment_factory.environment(profile="staging") as env: ...`; each
    from the session's settings (`heracles_settings`) with a state directory of its own."""
    factory = EnvironmentFactory(request.config, tmp_path_factory, heracles_settings)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def heracles_settings(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session environment's settings: --harness-* options, then the ini file's
    harness_* keys, then HERACLES_* variables. Override it in a conftest.py to change
    them in code, e.g. `return heracles_settings.with_(profile="staging")` from a
    session fixture of the same name."""
    return settings_from_options(request.config, tmp_path_factory)


_STARTING = pytest.StashKey[Environment]()
_SETUP_DIAGNOSTICS = pytest.StashKey[str]()
"""The session's environment from the moment it starts: a setup failure's diagnostics
come from it even when `up` itself failed."""


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest, heracles_settings: Settings
             ) -> Iterator[Environment]:
    """The environment for this session: brought up, or attached to when reused (or
    when $HERACLES_STATE_DIR / --harness-state-dir names one `harness up` started)."""
    from harness.backends.local.environment import LocalEnvironment

    config = request.config
    backend = backend_name(config)
    settings = heracles_settings
    if backend != "local":
        yield from _remote_platform(config, backend, settings)
        return
    shared = shared_environment(config)
    reuse = bool(option(config, "reuse")) or shared
    keep = bool(option(config, "keep")) or reuse
    try:
        with _worker_lock(settings, shared):
            if not reuse and _someone_elses(settings):
                # Someone else's running environment (harness up): use it, never destroy it.
                print(f"\nheracles: attaching to the running environment in "
                      f"{settings.state_dir} (left running afterwards)")
                reuse = keep = True
            plat = LocalEnvironment(settings)
            config.stash[_STARTING] = plat
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


@contextmanager
def _worker_lock(settings: Settings, shared: bool) -> Iterator[None]:
    """pytest-xdist workers sharing one environment bring it up one at a time: the
    first starts it (detached), the others attach."""
    if not shared:
        yield
        return
    from filelock import FileLock

    settings.state_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.state_dir) + ".xdist.lock"):
        yield


def _remote_platform(config: pytest.Config, backend: str,
                     settings: Settings) -> Iterator[Environment]:
    """The existing backend connects (a bad config or an unreachable endpoint fails the
    session, naming the file); the kind backend creates its cluster, or skips with the
    precise reason it cannot here (no Docker, images not present)."""
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
    config.stash[_STARTING] = kind
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
    if not option(config, "keep"):
        kind.down()


@pytest.fixture
def free_port() -> Iterator[int]:
    """A 127.0.0.1 port for the test's own listener, or an address nothing may answer
    at: reserved on this machine while the test runs, so no environment is handed it
    (port-for alone once gave a test's port to a platform starting on another worker)."""
    from harness.runtime.ports import PortRegistry

    with PortRegistry().lease() as [port]:
        yield port


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    """How long a soak scenario runs (--harness-soak)."""
    return float(option(request.config, "soak") or 0)


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
    """Every wait's duration goes into the test's user_properties; a scenario that fails
    — in its setup too — gets a redacted "heracles diagnostics" section, also written to
    the JUnit XML as the property `heracles_diagnostics`."""
    report = yield
    _redact_report(report)
    if report.when == "call":
        waits = wait_records(clear=True)
        if waits:
            item.user_properties.append(
                ("waits", [(w.description, round(w.seconds, 2), w.outcome) for w in waits]))
    if not report.failed or report.when == "teardown":
        return report
    if "platform" not in getattr(item, "fixturenames", ()):
        return report  # not a test of the session's environment: nothing of it to say
    funcargs = getattr(item, "funcargs", {})
    if "platform" in funcargs:
        text = _diagnostics(funcargs["platform"], funcargs.get("kube"),
                            funcargs.get("namespace"))
    elif (env := item.config.stash.get(_STARTING, None)) is not None:
        # the environment did not come up: said once, the same for every test after
        if _SETUP_DIAGNOSTICS not in item.config.stash:
            item.config.stash[_SETUP_DIAGNOSTICS] = _diagnostics(env)
        text = item.config.stash[_SETUP_DIAGNOSTICS]
    else:
        return report
    report.sections.append(("heracles diagnostics", text))
    item.user_properties.append(("heracles_diagnostics", text))  # JUnit reads teardown's
    return report


class _RedactedRepr:
    """A failure's text with its secrets masked, printed and written to JUnit as is."""

    def __init__(self, text: str, reprcrash: object) -> None:
        self.text = text
        self.reprcrash = reprcrash

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


def _redact_report(report: pytest.TestReport) -> None:
    """Mask secrets in what a report carries: pytest prints a failing frame's arguments,
    and `kubectl(..., input=<root token>)` once put a root token in a JUnit report. The
    report keeps pytest's own representation when there is nothing to mask."""
    import dataclasses

    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        masked = redact(text)
        if masked != text:
            crash = getattr(report.longrepr, "reprcrash", None)
            if dataclasses.is_dataclass(crash) and not isinstance(crash, type):
                crash = dataclasses.replace(crash, message=redact(getattr(crash, "message", "")))
            report.longrepr = _RedactedRepr(masked, crash)  # type: ignore[assignment]
    report.sections = [(title, redact(content)) for title, content in report.sections]


def _diagnostics(env: Environment, kube: KubeClient | None = None,
                 namespace: str | None = None) -> str:
    from harness.testing import diagnostics

    try:
        return diagnostics.collect(env, kube, namespace)
    except Exception as exc:  # noqa: BLE001 - diagnostics must never mask the failure
        return redact(f"(diagnostics could not be collected: {exc})")


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
def faults(request: pytest.FixtureRequest, platform: Environment, kube: KubeClient
           ) -> Iterator[Faults]:
    """Fault primitives — local: kill, stop, paused, restart, wipe_data, latency,
    timeout, reset_peer, partition; kind/existing: Kubernetes operations (delete a Vault
    pod, scale ESO). Whatever a test leaves on is undone at teardown. Refused (skipped)
    when pytest-xdist workers share the environment: a fault would break the others'
    tests."""
    if shared_environment(request.config):
        pytest.skip(FAULTS_REFUSED)
    f = platform.faults(kube)
    yield f
    f.undo_all()


# ---- prefixed aliases --------------------------------------------------------------------
# The same fixtures under names that cannot collide with a team's own (`platform` also
# shadows the stdlib module). Each is the fixture it names: same scope, same object.

@pytest.fixture(scope="session")
def heracles_env(platform: Environment) -> Environment:
    """= `platform`: the session's environment."""
    return platform


@pytest.fixture(scope="session")
def heracles_kube(kube: KubeClient) -> KubeClient:
    """= `kube`."""
    return kube


@pytest.fixture
def heracles_namespace(namespace: str) -> str:
    """= `namespace`."""
    return namespace


@pytest.fixture(scope="session")
def heracles_vault(vault: VaultAdmin) -> VaultAdmin:
    """= `vault`."""
    return vault


@pytest.fixture(scope="session")
def heracles_eso(eso: ExternalSecretsClient) -> ExternalSecretsClient:
    """= `eso`."""
    return eso


@pytest.fixture(scope="session")
def heracles_cluster_secret_store(cluster_secret_store: str) -> str:
    """= `cluster_secret_store`."""
    return cluster_secret_store


@pytest.fixture
def heracles_vault_store(vault_store: dict[str, str]) -> dict[str, str]:
    """= `vault_store`."""
    return vault_store


@pytest.fixture(scope="session")
def heracles_prometheus(prometheus: PrometheusAPI) -> PrometheusAPI:
    """= `prometheus`."""
    return prometheus


@pytest.fixture
def heracles_alerts(alerts: ReceivedAlerts) -> ReceivedAlerts:
    """= `alerts`."""
    return alerts


@pytest.fixture
def heracles_faults(faults: Faults) -> Faults:
    """= `faults`."""
    return faults


@pytest.fixture(scope="session")
def heracles_environment_factory(environment_factory: EnvironmentFactory
                                 ) -> EnvironmentFactory:
    """= `environment_factory`."""
    return environment_factory


@pytest.fixture
def heracles_free_port(free_port: int) -> int:
    """= `free_port`."""
    return free_port
