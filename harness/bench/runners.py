"""The measurements behind `harness bench`. Each runner measures one thing and returns
samples or `Figure`s; `run_bench` (in the package) decides how often and on which stack.

Every environment bench starts goes through `temporary_environment`: a throw-away state
directory, so a figure never reuses (or disturbs) a developer's running environment, and a
teardown that runs even when a measurement fails half-way.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench.figures import AlertTimeline, Figure, Resilience
from harness.runtime.pki import PKI
from harness.runtime.ports import PortRegistry
from harness.runtime.probes import http_ok
from harness.runtime.process import ManagedProcess, ProcessSpec
from harness.runtime.registry import RunRegistry, new_run_id
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.wait import WaitTimeout, eventually

if TYPE_CHECKING:  # imported where used: the figure model must not need the whole stack
    from harness.backends.base import Environment
    from harness.backends.local.environment import LocalEnvironment

Log = Callable[[str], None]
MiB = 1024 * 1024
BENCH_TIME_SCALE = 60.0  # alert figures: `for: 5m` runs as 5 s
SETTLE_SECONDS = 2  # let processes settle before reading RSS, as the full environment does


@contextmanager
def temporary_environment(settings: Settings, *, profile: str | None = None,
                          components: list[str] | None = None,
                          time_scale: float | None = None,
                          toolchain: Toolchain | None = None,
                          log: Log | None = None) -> Iterator[LocalEnvironment]:
    """A LocalEnvironment brought up (mode "session") in a throw-away state directory and
    always brought down: bench must never measure, reuse or leave behind a developer's
    environment. `profile`/`time_scale` override the settings, `components` defaults to the
    profile's; `log`, when given, receives the environment's own start/stop events."""
    from harness.backends.local.environment import LocalEnvironment

    events: Log = log or (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="heracles-bench-") as tmp:
        env = LocalEnvironment(settings.with_(state_dir=Path(tmp) / "state",
                                              profile=profile, time_scale=time_scale),
                               toolchain)
        env.up(components, mode="session", events=events)  # a failed up cleans up itself
        try:
            yield env
        finally:
            env.down(events=events)


def settled_rss_mib(env: LocalEnvironment) -> float:
    """RSS of every process of the environment, once start-up allocations have settled."""
    time.sleep(SETTLE_SECONDS)
    return env.rss_bytes() / MiB


# ---- the envtest floor ---------------------------------------------------------------------
@dataclass(frozen=True)
class FloorSample:
    """One start of etcd + kube-apiserver alone: seconds to /readyz, then RSS."""

    start_s: float
    rss_mib: float


def envtest_floor(settings: Settings, toolchain: Toolchain, workdir: Path) -> FloorSample:
    """Start etcd + kube-apiserver with envtest's flags (no controller-manager, scheduler or
    KWOK, ServiceAccount admission off): the floor every start figure is read against."""
    registry = RunRegistry(settings.registry_dir)
    run_id = new_run_id()
    registry.register(run_id, workdir, "session")
    ports = PortRegistry(settings.registry_dir).allocate(run_id, 3)
    pki = PKI(workdir / "pki")
    serving = pki.issue("apiserver", "127.0.0.1", "localhost")
    sa = pki.service_account_keys()
    etcd_url = f"http://127.0.0.1:{ports[0]}"
    etcd = ProcessSpec(
        name="floor-etcd", log_path=workdir / "etcd.log", data_dir=workdir / "etcd",
        probe=http_ok(f"{etcd_url}/health", expect=b'"true"'),
        argv=[str(toolchain.binary("etcd", "etcd")), f"--data-dir={workdir / 'etcd'}",
              f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
              f"--listen-peer-urls=http://127.0.0.1:{ports[1]}", "--unsafe-no-fsync",
              f"--initial-advertise-peer-urls=http://127.0.0.1:{ports[1]}",
              f"--initial-cluster=default=http://127.0.0.1:{ports[1]}"])
    api_url = f"https://127.0.0.1:{ports[2]}"
    apiserver = ProcessSpec(
        name="floor-apiserver", log_path=workdir / "apiserver.log",
        probe=http_ok(f"{api_url}/readyz", ca=pki.ca_cert),
        argv=[str(toolchain.binary("kubernetes", "kube-apiserver")),
              "--advertise-address=127.0.0.1", "--bind-address=127.0.0.1",
              f"--secure-port={ports[2]}", f"--etcd-servers={etcd_url}",
              f"--cert-dir={workdir / 'certs'}", f"--tls-cert-file={serving.cert}",
              f"--tls-private-key-file={serving.key}", f"--client-ca-file={pki.ca_cert}",
              "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
              "--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC",
              "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
              f"--service-account-key-file={sa.cert}",
              f"--service-account-signing-key-file={sa.key}"])
    procs = [ManagedProcess(s, run_id, registry.root) for s in (etcd, apiserver)]
    try:
        t0 = time.monotonic()
        for p in procs:
            p.start()
        start = time.monotonic() - t0
        time.sleep(SETTLE_SECONDS)  # as settled_rss_mib does for the full environment
        rss = sum(p.rss_bytes() for p in procs)
    finally:
        for p in reversed(procs):
            p.stop(grace=5)
        registry.forget(run_id)
    return FloorSample(start_s=start, rss_mib=rss / MiB)


def floor_run(settings: Settings, toolchain: Toolchain) -> FloorSample:
    """`envtest_floor` in a throw-away work directory."""
    with tempfile.TemporaryDirectory(prefix="heracles-floor-") as tmp:
        return envtest_floor(settings, toolchain, Path(tmp))


# ---- the control plane alone ---------------------------------------------------------------
@dataclass(frozen=True)
class ControlPlaneSample:
    """One start of the control plane alone: total and per-component seconds, settled
    RSS, and how long attaching a second handle to it takes."""

    start_s: float
    breakdown: dict[str, float]
    rss_mib: float
    attach_s: float


def control_plane_run(settings: Settings, toolchain: Toolchain) -> ControlPlaneSample:
    """Start only `kube` in a temporary environment; time a reuse (attach) of it too."""
    from harness.backends.local.environment import LocalEnvironment

    with temporary_environment(settings, components=["kube"], toolchain=toolchain) as env:
        start = env.timings["total"]
        breakdown = {k: v for k, v in env.timings.items() if k != "total"}
        rss = settled_rss_mib(env)
        t0 = time.monotonic()
        LocalEnvironment(env.settings, toolchain).attach()
        attach = time.monotonic() - t0
    return ControlPlaneSample(start_s=start, breakdown=breakdown, rss_mib=rss,
                              attach_s=attach)


@dataclass(frozen=True)
class StackSample:
    """One start of a whole profile: seconds to ready, settled RSS, the seconds of the
    components that have their own goals (Argo CD; Prometheus + Alertmanager), and when
    each component began and was ready (seconds after `up` began)."""

    start_s: float
    rss_mib: float
    argocd_s: float
    observability_s: float
    timeline: dict[str, tuple[float, float]] = field(default_factory=dict)


def stack_sample(env: LocalEnvironment) -> StackSample:
    """Read a freshly started stack's start figures (and its settled RSS)."""
    start = env.timings["total"]
    rss = settled_rss_mib(env)
    return StackSample(start_s=start, rss_mib=rss, argocd_s=env.timings.get("argocd", 0.0),
                       observability_s=sum(env.timings.get(c, 0.0)
                                           for c in ("prometheus", "alertmanager")),
                       timeline=dict(env.started_at))


def sequential_start(settings: Settings, toolchain: Toolchain) -> float:
    """The anchor of the dev platform's start: the same platform brought up the way it was
    before issue 18 — one component, and one process, after another, on an empty etcd."""
    anchor = settings.with_(parallel_start=False, cluster_seed=False)
    with temporary_environment(anchor, profile="dev", time_scale=BENCH_TIME_SCALE,
                               toolchain=toolchain) as env:
        return env.timings["total"]


def median_timeline(samples: list[StackSample]) -> dict[str, tuple[float, float]]:
    """Per component, the median of when it began and when it was ready, in start order
    of the medians."""
    names = {n for s in samples for n in s.timeline}
    out = {n: (statistics.median(s.timeline[n][0] for s in samples if n in s.timeline),
               statistics.median(s.timeline[n][1] for s in samples if n in s.timeline))
           for n in names}
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def build_times(toolchain: Toolchain) -> dict[str, float | None]:
    """Seconds of the build that produced each cache entry (Debian packages are not built)."""
    return {s.name: s.build_seconds for s in toolchain.status(deep=False)
            if s.source != "debian"}


# ---- on the dev platform -------------------------------------------------------------------
def synced_external_secret(env: Environment, ns: str, name: str, first: str,
                           timeout: float) -> tuple[Any, Any, str]:
    """Namespace `ns` with a test SecretStore of its own (as the suites' `vault_store`),
    secret/<ns>/<name> = {password: first} and its ExternalSecret `name` (1h) synced.
    Returns (eso client, vault, key): what a write -> force-sync -> Secret figure needs."""
    from kubernetes import client

    from harness.clients.eso import ExternalSecretsClient, make_test_store

    kube = env.kube_client()
    eso = ExternalSecretsClient(env, kube)
    vault = env.vault
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    store = make_test_store(vault, eso, ns)
    key = f"{store['prefix']}/{name}"
    vault.kv_put(key, password=first)
    eso.apply_object({
        "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"refreshInterval": "1h", "target": {"name": name},
                 "secretStoreRef": {"name": store["store"], "kind": "SecretStore"},
                 "data": [{"secretKey": "password",
                           "remoteRef": {"key": key, "property": "password"}}]}}, ns)
    eso.wait_value(ns, name, "password", first, timeout=timeout)
    return eso, vault, key


def rotation_latency(env: LocalEnvironment, rotations: int, log: Log) -> Figure:
    """Vault write -> force-sync -> Secret updated, seconds, `rotations` times."""
    ns = "heracles-bench"
    eso, vault, key = synced_external_secret(env, ns, "rotation", "r0", timeout=60)
    out = []
    for i in range(1, rotations + 1):
        t0 = time.monotonic()
        vault.kv_put(key, password=f"r{i}")
        eso.force_sync(ns, "rotation")
        eso.wait_value(ns, "rotation", "password", f"r{i}", timeout=30)
        out.append(time.monotonic() - t0)
    if out:
        log(f"{rotations} rotations: median {statistics.median(out):.2f}s")
    return rotation_figure(out)


def rotation_figure(samples: list[float]) -> Figure:
    """Rotation latencies with the issue's goals: p50 <= 1 s, p95 <= 2 s."""
    return Figure("rotation_force_sync_latency", "s", samples, target=1.0, p95_target=2.0,
                  note="rotation (write -> force-sync -> Secret)")


def alert_timeline(env: LocalEnvironment, log: Log) -> AlertTimeline:
    """Pause Vault and time each stage until VaultDown reaches the receiver: the scrape
    that sees it (up == 0), pending, firing in Prometheus, delivered by Alertmanager."""
    from harness.rules import load_rules, parse_duration

    prom = env.prometheus()
    received = env.alerts()
    rule = next(r for r in load_rules(prom.rule_sources()) if r.name == "VaultDown")
    hold = parse_duration(rule.for_ or "0s") / env.settings.time_scale
    marks: dict[str, float] = {}
    vault = env.process("vault")
    t0 = time.monotonic()
    vault.pause()
    try:
        def observe() -> bool:
            now = time.monotonic() - t0
            if "up_zero" not in marks and prom.query('up{job="vault"} == 0'):
                marks["up_zero"] = now
            states = {a["state"] for a in prom.alerts()
                      if a["labels"].get("alertname") == "VaultDown"}
            if "pending" in states and "pending" not in marks:
                marks["pending"] = now
            if "firing" in states and "firing" not in marks:
                marks["firing"] = now
            if any(a["labels"].get("alertname") == "VaultDown" and a["status"] == "firing"
                   for a in received.alerts()):
                marks["delivered"] = now
            return "delivered" in marks

        try:
            eventually(observe, timeout=hold + 60, interval=0.05,
                       description="VaultDown delivered to the receiver")
        except WaitTimeout:
            pass  # the timeline shows how far it got
    finally:
        vault.resume()
    timeline = AlertTimeline(marks=marks, for_scaled=hold)
    log(f"VaultDown timeline: {timeline.stages()}")
    return timeline


def gitops_latency(env: LocalEnvironment, commits: int, log: Log) -> Figure:
    """Bootstrap the dev app-of-apps, then `commits` times: commit + push a change to the
    workload on branch dev, trigger a refresh, time until the Application is Synced at
    that commit."""
    import yaml

    from harness.clients.argocd import Applications
    from harness.clients.eso import ExternalSecretsClient
    from harness.clients.git import Workspace

    kube = env.kube_client()
    ExternalSecretsClient(env, kube).apply(
        env.settings.fixtures_dir / "gitops" / "argocd" / "dev" / "app-of-apps.yaml")
    apps = Applications(kube)
    apps.wait("workload", timeout=180)
    out: list[float] = []
    with tempfile.TemporaryDirectory(prefix="heracles-bench-ws-") as tmp:
        ws = Workspace(env.git.url(), Path(tmp) / "platform")
        for i in range(commits):
            docs = list(yaml.safe_load_all(ws.read("workload/sample-app.yaml")))
            docs[0]["spec"]["template"]["metadata"].setdefault("annotations", {})[
                "bench/round"] = str(i)
            ws.write("workload/sample-app.yaml", yaml.safe_dump_all(docs, sort_keys=False))
            ws.commit(f"bench round {i}")
            t0 = time.monotonic()
            sha = ws.push("dev")
            apps.refresh("workload")
            apps.wait("workload", revision=sha, health=None, timeout=60)
            out.append(time.monotonic() - t0)
            log(f"  commit -> Synced {i + 1}/{commits}: {out[-1]:.2f}s")
    return gitops_figure(out)


def gitops_figure(samples: list[float]) -> Figure:
    """Commit -> Synced latencies with the issue's goal (5 s)."""
    return Figure("gitops_commit_to_synced", "s", samples, target=5.0,
                  note="commit -> Synced (refresh trigger)")


def byo_repo_figures(env: LocalEnvironment, log: Log) -> list[Figure]:
    """Each sample repo: `apply --platform-repo` (scan, kustomize, seed, apply, serve),
    then until every Application it holds is Synced. One single-sample figure each."""
    from harness.clients.argocd import Applications
    from harness.gitops.platform_repo import apply_repo

    env.install_crds("prometheus-operator")
    argo = Applications(env.kube_client())
    out: list[Figure] = []
    for repo in (env.settings.fixtures_dir / "gitops",
                 env.settings.fixtures_dir / "samples" / "kustomize-platform"):
        log(f"bring-your-own repo: {repo.name}")
        t0 = time.monotonic()
        report = apply_repo(env, repo, namespace=f"bench-{repo.name}", env="dev")
        out.append(_single(f"{repo.name}_apply", time.monotonic() - t0))
        for name in report["applications"]["expected"]:
            argo.wait(name, sync="Synced", health=None, timeout=180)
        out.append(_single(f"{repo.name}_to_all_synced", time.monotonic() - t0))
    return out


def _single(name: str, seconds: float) -> Figure:
    """A one-run figure labelled the way the table has always shown it."""
    return Figure(name, "s", [seconds], note=f"platform repo {name.replace('_', ' ')}")


# ---- on the staging stack ------------------------------------------------------------------
def resilience_figures(env: LocalEnvironment, repeat: int, log: Log) -> Resilience:
    """Drills on the staging stack: the vault-leader-loss drill `repeat` times (new
    active node after kill -9, ESO sync resumed after it), then one vault-restore."""
    from harness.drills import run_drill

    kills: list[float] = []
    syncs: list[float] = []
    rtos: list[float] = []
    for i in range(repeat):
        log(f"drill vault-leader-loss {i + 1}/{repeat}")
        r = run_drill("vault-leader-loss", env)
        if r.verdict != "PASS":
            log(f"  FAIL: {'; '.join(r.reasons)}")
            continue
        kills.append(r.measurements["new_active_after_kill"])
        syncs.append(r.measurements["eso_sync_after_failover"])
        rtos.append(r.rto_seconds or 0.0)
    log("drill vault-restore")
    restore = run_drill("vault-restore", env)
    rto = restore.rto_seconds
    return Resilience(
        new_active_after_leader_kill=Figure(
            "new_active_after_leader_kill", "s", kills, target=3.0,
            note="Vault: new active after kill -9"),
        eso_sync_resumed_after_failover=Figure(
            "eso_sync_resumed_after_failover", "s", syncs, target=10.0,
            note="ESO sync after failover"),
        vault_leader_loss_rto=Figure("vault_leader_loss_rto", "s", rtos, target=10.0,
                                     note="vault-leader-loss RTO"),
        vault_restore_rto=Figure("vault_restore_rto", "s", [] if rto is None else [rto],
                                 target=30.0, note="vault-restore drill RTO (1 run)"),
        vault_restore_verdict=restore.verdict, vault_restore_rpo=restore.rpo)


# ---- the kind backend (offline) ------------------------------------------------------------
def kind_render_seconds(settings: Settings, log: Log) -> float:
    """The kind backend's offline part: four charts linted + templated, the config."""
    from harness.backends.kind.environment import KindEnvironment

    log("kind backend: render (helm lint + template of 4 charts)")
    with tempfile.TemporaryDirectory(prefix="heracles-kind-") as tmp:
        t0 = time.monotonic()
        KindEnvironment(settings.with_(state_dir=Path(tmp))).render()
        return round(time.monotonic() - t0, 3)


def kind_render_figure(settings: Settings, log: Log) -> Figure:
    """`kind_render_seconds` as a one-run figure."""
    return Figure("kind_render", "s", [kind_render_seconds(settings, log)],
                  note="kind backend render (4 charts lint + template)")
