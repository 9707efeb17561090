"""The local backend's Environment: components composed per profile, brought up,
attached to, torn down — real binaries as processes on 127.0.0.1.

`up()` is idempotent: in a state directory whose environment is running, it attaches
(checking each process's readiness) and starts only what is missing. A failed start
stops everything that this call started and leaves the environment as it found it.
What the state file holds and how its status may change is `record.py`.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.backends.base import LOCAL_CAPABILITIES
from harness.backends.local.components.base import Component, Context
from harness.backends.local.components.database import Database
from harness.backends.local.components.eso import ExternalSecretsOperator
from harness.backends.local.components.etcd import Etcd
from harness.backends.local.components.git import GitServer
from harness.backends.local.components.kube import Kube
from harness.backends.local.components.objectstore import ObjectStore
from harness.backends.local.components.observability import Alertmanager, Prometheus
from harness.backends.local.components.toxiproxy import Toxiproxy
from harness.backends.local.components.vault import Vault
from harness.backends.local.profiles import COMPONENTS, PROFILE_COMPONENTS, resolve_components
from harness.backends.local.record import EnvironmentRecord, recorded_profile
from harness.backends.local.service_map import service_map
from harness.errors import ComponentStartError, HarnessError
from harness.runtime.graph import run_graph
from harness.runtime.pki import PKI
from harness.runtime.process import ManagedProcess
from harness.runtime.redact import redact
from harness.runtime.registry import RunRegistry, kill_processes, new_run_id, processes_of_run
from harness.runtime.state import StateDir, remove_temp_paths
from harness.settings import Settings
from harness.toolchain import Toolchain

if TYPE_CHECKING:
    from harness.clients.alerts import ReceivedAlerts
    from harness.clients.kube import KubeClient
    from harness.faults import LocalFaults

__all__ = ["COMPONENTS", "PROFILE_COMPONENTS", "LocalEnvironment", "bring_up", "profile_chosen",
           "resolve_components"]

Events = Callable[[str], None]
C = TypeVar("C", bound=Component)


def _quiet(_message: str) -> None:
    """The default progress sink: say nothing."""


def profile_chosen(profile: str | None) -> bool:
    """Whether the caller asked for a profile: given explicitly, or by HERACLES_PROFILE
    (Settings would otherwise fall back to the default, which must not override the
    profile of a running environment)."""
    return profile is not None or os.environ.get("HERACLES_PROFILE") is not None


def bring_up(settings: Settings, components: list[str] | None = None, *,
             keep_running_profile: bool = False, recreate: bool = False,
             events: Events = _quiet) -> LocalEnvironment:
    """`harness up`: start the environment of `settings.state_dir`, or attach to it and
    start what is missing. With `keep_running_profile` (no profile was asked for), the
    recorded environment — running or stopped — keeps the profile it has rather than
    `up()` refusing the default."""
    if keep_running_profile and not recreate:
        recorded = recorded_profile(settings.state_dir)
        if recorded in PROFILE_COMPONENTS:
            settings = settings.with_(profile=recorded)
    return LocalEnvironment(settings).up(components or None, events=events,
                                         recreate=recreate)


class LocalEnvironment:
    """The local backend (implements harness.backends.base.Environment)."""

    backend = "local"

    def __init__(self, settings: Settings | None = None,
                 toolchain: Toolchain | None = None) -> None:
        self.settings = settings or Settings()
        self.state = StateDir(self.settings.state_dir)
        self.registry = RunRegistry(self.settings.registry_dir)
        self.toolchain = toolchain or Toolchain(self.settings.cache_dir)
        self._record: EnvironmentRecord | None = None
        self.components: dict[str, Component] = {}
        self.timings: dict[str, float] = {}
        # Component -> (began, ready) in seconds since `up` began: the start's timeline.
        self.started_at: dict[str, tuple[float, float]] = {}
        self._up_started = time.monotonic()
        self.pki = PKI(self.state.pki_dir)

    # ---- the record ------------------------------------------------------------------
    @property
    def record(self) -> EnvironmentRecord:
        if self._record is None:
            raise HarnessError(f"no environment loaded from {self.state.root}; "
                               "run `harness up` first")
        return self._record

    def running_record(self) -> EnvironmentRecord:
        """The record of the environment running in this state directory, or a clear
        error: the one check `attach`, `env` and the CLI share."""
        record = EnvironmentRecord.load(self.state)
        if record is None or not record.is_up:
            raise HarnessError(f"no running environment in {self.state.root}; "
                               "run `harness up` first")
        return record

    def _adopt(self, record: EnvironmentRecord) -> None:
        """Take over a recorded environment: its profile decides its shape (ports, nodes),
        whatever profile this invocation was given by default."""
        self._record = record
        if record.profile in PROFILE_COMPONENTS:
            self.settings = self.settings.with_(profile=record.profile)
        if record.time_scale:  # rules were scaled when it started: keep that
            self.settings = self.settings.with_(time_scale=float(record.time_scale))
        if record.vault_values:  # its Vault nodes come from the customer's values
            self.settings = self.settings.with_(vault_values=Path(record.vault_values))

    def _build(self, names: list[str]) -> None:
        record = self.record
        ctx = Context(settings=self.settings, state=self.state, toolchain=self.toolchain,
                      registry=self.registry, pki=self.pki,
                      run_id=record.run_id, ports=record.ports, processes=record.processes,
                      service_map=self.service_map, process_control=self._control)
        self.components = {n: COMPONENTS[n](ctx) for n in names if n in COMPONENTS}
        ctx.components.update(self.components)
        for comp in self.components.values():
            comp.register_secrets()

    def _load(self, names: list[str] | None = None) -> EnvironmentRecord:
        """Adopt the running environment and build its components (no process started)."""
        record = self.running_record()
        self._adopt(record)
        self._build(names if names is not None else record.components)
        return record

    # ---- typed access to components --------------------------------------------------
    def component(self, name: str) -> Component:
        if name not in self.components:
            raise HarnessError(f"component {name!r} is not part of this environment "
                               f"(running: {', '.join(self.components) or 'none'})")
        return self.components[name]

    def _typed(self, kind: type[C], name: str) -> C:
        comp = self.component(name)
        if not isinstance(comp, kind):
            raise HarnessError(f"component {name!r} is a {type(comp).__name__}, "
                               f"not {kind.__name__}")
        return comp

    @property
    def kube(self) -> Kube:
        return self._typed(Kube, "kube")

    @property
    def git(self) -> GitServer:
        return self._typed(GitServer, "git")

    @property
    def vault(self) -> Vault:
        return self._typed(Vault, "vault")

    @property
    def database(self) -> Database:
        return self._typed(Database, "db")

    @property
    def object_store(self) -> ObjectStore:
        return self._typed(ObjectStore, "s3")

    @property
    def etcd(self) -> Etcd:
        return self._typed(Etcd, "etcd")

    @property
    def eso_operator(self) -> ExternalSecretsOperator:
        return self._typed(ExternalSecretsOperator, "eso")

    # ---- Environment: Kubernetes and the platform's services ---------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        return LOCAL_CAPABILITIES

    @property
    def kubeconfig(self) -> str:
        return str(self.state.kubeconfig)

    @property
    def kubectl(self) -> str:
        return str(self.toolchain.binary("kubernetes", "kubectl"))

    def kube_client(self) -> KubeClient:
        from harness.clients.kube import KubeClient

        self.kube  # noqa: B018 - an environment without kube says so, clearly
        return KubeClient(self.kubeconfig, self.kubectl)

    def prometheus(self) -> Prometheus:
        return self._typed(Prometheus, "prometheus")

    def alerts(self) -> ReceivedAlerts:
        from harness.clients.alerts import ReceivedAlerts

        return ReceivedAlerts(self._typed(Alertmanager, "alertmanager"))

    @property
    def eso_metrics_addresses(self) -> list[str]:
        eso = self.components.get("eso")
        return list(eso.metrics_addresses) if isinstance(eso, ExternalSecretsOperator) else []

    def git_url(self) -> str:
        return self.git.url()

    def faults(self, kube: KubeClient | None = None) -> LocalFaults:
        from harness.faults import LocalFaults

        proxy = self.components.get("netfault")
        return LocalFaults(self, proxy if isinstance(proxy, Toxiproxy) else None)

    def service_map(self) -> dict[str, str]:
        """In-cluster service address -> local address (the apply step rewrites these)."""
        return service_map(self.components.values())

    def after_apply(self, docs: list[Any]) -> None:
        """Applied PrometheusRules become Prometheus rules (time-scaled) at once."""
        if "prometheus" in self.components and any(
                getattr(d, "kind", "") == "PrometheusRule" for d in docs):
            self.prometheus().reload()

    # ---- up / attach / down ------------------------------------------------------------
    def up(self, components: list[str] | None = None, mode: str = "detached",
           events: Events = _quiet, recreate: bool = False) -> LocalEnvironment:
        """Start the environment, or attach to it and start what is missing. A state
        directory that holds a stopped environment of another profile is refused
        unless `recreate` (its data would not fit); `recreate` starts from nothing."""
        started = self._up_started = time.monotonic()
        reaped = self.registry.reap()
        if reaped:
            events(f"reaped leftovers of dead run(s): {', '.join(reaped)}")
        names = resolve_components(
            components or self.settings.components or PROFILE_COMPONENTS[self.settings.profile])
        with self.state.lock():
            live, names = self._plan(names, recreate, events)
            record = self.record
            previous_map = dict(record.service_map)
            record.components = names
            self._build(names)
            self._preflight()
            if not live:
                # Owned by this process until ready: if we die mid-start, we get reaped
                # (and so are the ports reserved next).
                self.registry.register(record.run_id, self.state.root, "starting")
            try:
                self._reserve_ports(fresh=not live, events=events)
            except BaseException:
                if not live:
                    self.registry.forget(record.run_id)
                raise
            record.temp_paths = self._temp_paths()
            record.begin_start()
            record.save(self.state)
            if not live:
                from harness.backends.local.seed import seed_etcd

                try:
                    seed_etcd(self, events)
                except BaseException:
                    self.registry.forget(record.run_id)
                    record.start_failed(was_live=False)
                    record.save(self.state)
                    raise
            self._start_components(live, events)
            new_map = self.service_map()
            if not live and previous_map:
                from harness.backends.local.repoint import repoint

                repoint(previous_map, new_map, events,
                        git=self.git if "git" in self.components else None,
                        kube=self.kube_client() if "kube" in self.components else None,
                        argocd="argocd" in self.components)
            record.started(self.endpoints(), new_map)
            record.save(self.state)
            self.registry.set_mode(record.run_id, mode)
        self.timings["total"] = time.monotonic() - started
        return self

    def _plan(self, names: list[str], recreate: bool = False,
              events: Events = _quiet) -> tuple[bool, list[str]]:
        """Attach to the live environment of this state directory (its components plus
        `names`), or start a fresh run there. Returns (live, components)."""
        previous = EnvironmentRecord.load(self.state)
        if previous is not None and previous.is_live(self.registry):
            if previous.profile != self.settings.profile:
                raise HarnessError(
                    f"the environment in {self.state.root} runs profile "
                    f"{previous.profile!r}, not {self.settings.profile!r}; run "
                    "`harness down --purge` first (its data is that profile's) or choose "
                    "another --state-dir")
            self._adopt(previous)
            return True, resolve_components(list(dict.fromkeys(
                [*previous.components, *names])))
        if previous is not None:
            # Not live by the registry's account (wiped, or another registry):
            # whatever that run left running on these data dirs goes first.
            kill_processes(processes_of_run(previous.run_id, self.registry.root))
            if recreate:
                self._wipe_state()
                events(f"recreated {self.state.root}: the {previous.profile} environment's "
                       "data removed")
                previous = None
            elif previous.profile != self.settings.profile:
                raise HarnessError(
                    f"{self.state.root} holds a stopped {previous.profile!r} environment "
                    f"(its etcd, Vault and Git data), not {self.settings.profile!r}; run "
                    "`harness up --recreate` to start over, `harness down --purge` first, "
                    "or choose another --state-dir")
        self._record = EnvironmentRecord.fresh(
            previous, new_run_id(), self.settings.profile, self.settings.time_scale,
            str(self.settings.vault_values or "") or None)
        return False, names

    def start_dependencies(self) -> dict[str, tuple[str, ...]]:
        """Component -> the components of this environment it waits for: those it
        requires, and those it starts after when they are part of it."""
        present = list(self.components)
        if not self.settings.parallel_start:  # each after the one before it
            return {name: tuple(present[i - 1:i]) for i, name in enumerate(present)}
        return {name: tuple(d for d in present
                            if d in (*comp.requires, *comp.start_after))
                for name, comp in self.components.items()}

    def _start_components(self, live: bool, events: Events) -> None:
        """Each component once those it waits for are ready, the others at the same
        time: attached when ready, started otherwise. On any failure what this call
        started is stopped again."""
        record = self.record
        started_now: list[ManagedProcess] = []
        lock = threading.Lock()  # the record is saved from the components' threads

        def on_started(proc: ManagedProcess) -> None:
            with lock:
                started_now.append(proc)
                record.processes[proc.name] = proc.record()
                record.save(self.state)

        def bring(name: str) -> None:
            comp = self.components[name]
            t0 = time.monotonic()
            if comp.ready():
                comp.configure()
                events(f"{name}: attached ({comp.address})")
                return
            events(f"{name}: starting")
            try:
                comp.start(on_started=on_started)
            except HarnessError:
                raise
            except Exception as exc:  # a client library's error while wiring up
                raise ComponentStartError(redact(
                    f"{name}: setup after start failed: {type(exc).__name__}: {exc}"
                )) from exc
            self.timings[name] = time.monotonic() - t0
            self.started_at[name] = (t0 - self._up_started, time.monotonic() - self._up_started)
            events(f"{name}: ready in {self.timings[name]:.1f}s ({comp.address})")

        try:
            self.pki.ensure_ca()
            run_graph(self.components, self.start_dependencies(), bring)
        except BaseException:
            for proc in reversed(started_now):
                proc.stop(grace=3)
                record.processes.pop(proc.name, None)
            if not live:
                kill_processes(processes_of_run(record.run_id, self.registry.root))
                self.registry.forget(record.run_id)
            else:
                self.registry.set_mode(record.run_id, "detached")
            record.start_failed(was_live=live)
            record.save(self.state)
            raise

    def _preflight(self) -> None:
        """Every component's configuration can run and every binary exists, before
        anything starts."""
        for comp in self.components.values():
            comp.preflight()
        problems: dict[str, str] = {}
        for comp in self.components.values():
            for tool in comp.tools():
                if tool not in problems and (problem := self.toolchain.problem(tool)):
                    problems[tool] = problem
        if problems:
            raise HarnessError(
                "cannot start: " + "; ".join(problems.values())
                + f"; run: harness toolchain install --only {','.join(problems)}")

    def _wipe_state(self) -> None:
        """Everything in the state directory but the lock we hold."""
        for path in self.state.root.iterdir():
            if path.name == ".lock":
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def _reserve_ports(self, fresh: bool, events: Events = _quiet) -> None:
        record = self.record
        ports = record.ports
        spans = {k: v for c in self.components.values()
                 for k, v in c.wanted_ports().items() if v > 1}
        wanted = [p for c in self.components.values() for p in c.wanted_ports()]
        if fresh:
            # Ports of an environment that went down are kept (blocks included), so
            # data directories and objects that remember addresses stay consistent; one
            # taken meanwhile moves, and what held the old address is re-pointed.
            from harness.runtime.ports import holder

            previous = {k: v for k, v in ports.items() if k in wanted}
            keep = self.registry.ports.reserve(record.run_id, previous, spans)
            for key in sorted(set(previous) - set(keep)):
                events(f"port {previous[key]} ({key}) is taken by {holder(previous[key])}: "
                       "moving it")
            ports.clear()
            ports.update(keep)
        for key in (p for p in wanted if p not in ports):
            [ports[key]] = self.registry.ports.allocate(record.run_id, 1,
                                                        span=spans.get(key, 1))

    def add_unstarted(self, kind: type[C]) -> C:
        """A component added to this running environment with its ports reserved, not
        started: for callers that run only part of it (the cluster seed's apiserver).
        `down` stops what of it runs."""
        with self.state.lock():
            record = self.record
            record.components = resolve_components([*record.components, kind.name])
            self._build(record.components)
            self._reserve_ports(fresh=False)
            record.save(self.state)
        return self._typed(kind, kind.name)

    def attach(self) -> LocalEnvironment:
        """Bind to the running environment of this state directory, without starting."""
        t0 = time.monotonic()
        self._load()
        not_ready = [p.name for c in self.components.values() for p in c.processes()
                     if not p.ready()]
        if not_ready:
            raise HarnessError(f"environment in {self.state.root} is not healthy: "
                               f"{', '.join(not_ready)} not ready; run `harness up` to repair")
        self.timings["attach"] = time.monotonic() - t0
        return self

    def down(self, purge: bool = False, events: Events = _quiet) -> None:
        with self.state.lock():
            try:
                record = EnvironmentRecord.load(self.state)
            except HarnessError:
                # A damaged or foreign-version record in OUR state directory (it has an
                # environment.json): --purge removes it, as the error says. A directory
                # that is not ours is never purged.
                if not (purge and self.state.file.exists()):
                    raise
                record = None
            if record is None:
                events(f"no environment in {self.state.root}")
            else:
                self._adopt(record)
                self._build(record.components)
                for name, comp in reversed(self.components.items()):
                    comp.stop()
                    events(f"{name}: stopped")
                strays = processes_of_run(record.run_id, self.registry.root)
                if strays:
                    kill_processes(strays)
                    events(f"killed {len(strays)} stray process(es) of run {record.run_id}")
                # The components' own list too: a record written by an older harness
                # has no temp_paths.
                remove_temp_paths(sorted({*record.temp_paths, *self._temp_paths()}))
                self.registry.forget(record.run_id)
                record.stopped()
                record.save(self.state)
        if purge and self.state.root.exists():
            shutil.rmtree(self.state.root)
            events(f"removed {self.state.root}")

    def _temp_paths(self) -> list[str]:
        return [str(p) for comp in self.components.values() for p in comp.temp_paths()]

    def keep_running(self) -> None:
        """Leave this environment running after the session that started it ends."""
        self.registry.set_mode(self.record.run_id, "detached")

    # ---- process controls (faults use these: the state file must follow every pid) ----
    def all_processes(self) -> list[ManagedProcess]:
        return [p for c in self.components.values() for p in c.processes()]

    def process(self, name: str) -> ManagedProcess:
        for comp in self.components.values():
            for proc in comp.processes():
                if proc.name == name:
                    return proc
        raise HarnessError(f"no process {name!r} in this environment")

    def _record_process(self, proc: ManagedProcess) -> None:
        """Merge one process's new pid into the state file as it is now (another
        command may have changed it since we loaded it)."""
        record = self.record
        current = EnvironmentRecord.load(self.state) or record
        current.processes[proc.name] = proc.record()
        current.save(self.state)
        if current is not record:
            record.processes.clear()  # the components hold this very dict
            record.processes.update(current.processes)

    def _control(self, proc: ManagedProcess, action: str) -> None:
        """start/restart a process under the state lock, recording its new pid."""
        with self.state.lock():
            getattr(proc, action)()
            self._record_process(proc)

    def _owner(self, name: str) -> Component:
        for comp in self.components.values():
            if any(p.name == name for p in comp.processes()):
                return comp
        raise HarnessError(f"no process {name!r} in this environment")

    def restart_process(self, name: str) -> ManagedProcess:
        """Graceful restart on the same data directory and ports, through the component
        that owns the process (it may have more to do: the dev Vault unseals)."""
        return self._owner(name).restart_process(name)

    def start_process(self, name: str) -> ManagedProcess:
        return self._owner(name).start_process(name)

    # ---- cluster state (etcd) backup and restore -----------------------------------------
    def _kube_clients(self) -> list[ManagedProcess]:
        """Processes holding Kubernetes watch caches, in start order: the apiserver and
        controllers, and every component that requires kube (ESO, ...)."""
        return [p for n, c in self.components.items()
                if n == "kube" or "kube" in c.requires for p in c.processes()]

    def restore_cluster_state(self, snapshot: Path | str, step: Events = _quiet) -> None:
        """Replace the cluster state with an etcd snapshot, as the Kubernetes docs say to:
        stop every apiserver client and the apiserver, restore etcd's data directory,
        start etcd, then everything again (their caches are newer than the restored
        state). The snapshot is checked first, so a bad file changes nothing."""
        etcd = self.etcd
        snap = Path(snapshot)
        etcd.check_snapshot(snap)
        clients = self._kube_clients()
        with self.state.lock():
            for proc in reversed(clients):
                proc.stop(grace=5)
            etcd.process("etcd").stop(grace=5)
            step("apiserver, controllers and etcd stopped")
            etcd.restore_data(snap)
            step("etcd data restored from the snapshot")
            for proc in [etcd.process("etcd"), *clients]:
                proc.start()
                self._record_process(proc)
        step("etcd, apiserver and controllers started")

    # ---- cluster add-ons ---------------------------------------------------------------
    CRD_SETS = {"prometheus-operator": "prometheus-operator-crds"}

    def install_crds(self, name: str, events: Events = _quiet) -> list[str]:
        """Server-side apply a CRD set from the toolchain cache (never the internet)."""
        from harness.clients import manifests
        from harness.clients.kube import dynamic_client

        if name not in self.CRD_SETS:
            raise HarnessError(f"unknown CRD set {name!r}; known: {', '.join(self.CRD_SETS)}")
        tool = self.CRD_SETS[name]
        files = [self.toolchain.file(tool, f) for f in self.toolchain.spec(tool).files]
        docs = manifests.load_cached(files, self.toolchain.parsed_dir)
        dyn = dynamic_client(self.kube.api_client())
        manifests.validate(docs, dyn)
        manifests.apply(docs, dyn, events)
        return [d.name for d in docs]

    # ---- inspection --------------------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for comp in self.components.values():
            out.update(comp.endpoints())
        return out

    def status(self) -> dict[str, Any]:
        record = EnvironmentRecord.load(self.state)
        if record is None:
            return {"state_dir": str(self.state.root), "status": "absent", "components": {}}
        self._adopt(record)
        self._build(record.components)
        comps = {}
        for name, comp in self.components.items():
            procs = {}
            for p in comp.processes():
                procs[p.name] = {"pid": p.pid if p.running() else None,
                                 "running": p.running(), "ready": p.ready(),
                                 "log": str(p.spec.log_path)}
            comps[name] = {"address": comp.address, "ready": all(
                v["ready"] for v in procs.values()), "processes": procs,
                **comp.status_details()}
        return {"state_dir": str(self.state.root), "status": str(record.status),
                "run_id": record.run_id, "profile": record.profile,
                "kubeconfig": str(self.state.kubeconfig), "components": comps}

    def diagnostics(self, log_lines: int = 20) -> str:
        """Each process's health and its log tail (the caller redacts)."""
        parts: list[str] = []
        for name, comp in self.components.items():
            for proc in comp.processes():
                state = "ready" if proc.ready() else ("running, NOT ready" if proc.running()
                                                      else "NOT running")
                parts.append(f"== {name}/{proc.name}: {state} (pid {proc.pid})")
            for pname, tail in comp.log_tails(log_lines).items():
                parts.append(f"-- log tail {pname} --\n{tail}")
        return "\n".join(parts)

    def env_exports(self) -> str:
        self._load()
        lines = [f"export HERACLES_STATE_DIR={self.state.root}"]
        if "kube" in self.components:
            kubectl = self.toolchain.binary("kubernetes", "kubectl")
            lines += [f"export KUBECONFIG={self.state.kubeconfig}",
                      f"export HERACLES_KUBE_APISERVER={self.kube.address}",
                      f"export PATH={kubectl.parent}:$PATH"]
        if "etcd" in self.components:
            lines.append(f"export ETCDCTL_ENDPOINTS={self.etcd.address}")
        if "node" in self.components:
            # crictl against the real node's containerd (`crictl ps`, `crictl images`)
            crictl = self.toolchain.binary("cri-tools", "crictl")
            socket = self.state.root / "node" / "containerd.sock"
            lines += [f"export CONTAINER_RUNTIME_ENDPOINT=unix://{socket}",
                      f"export IMAGE_SERVICE_ENDPOINT=unix://{socket}",
                      f"export PATH={crictl.parent}:$PATH"]
        if "vault" in self.components:
            vault = self.vault
            bao = self.toolchain.binary("openbao", "bao")
            # One set of variables, VAULT_*, which `vault` and `bao` both honour; BAO_*
            # are unset, since bao prefers them and a stale one would disagree. The
            # address is the `vault-active` Service (on dev: the node), so the runbook's
            # snapshot restore and step-down reach the leader. The token itself is never
            # printed: the shell reads it from its 0600 file.
            lines += ["unset BAO_ADDR BAO_TOKEN BAO_CACERT",
                      f"export VAULT_ADDR={vault.active_address}",
                      f'export VAULT_TOKEN="$(cat {vault.root_token_file})"',
                      *([f"export VAULT_CACERT={vault.ctx.pki.ca_cert}"] if vault.tls else []),
                      f"export PATH={bao.parent}:$PATH"]
        for name, var in (("prometheus", "HERACLES_PROMETHEUS_URL"),
                          ("alertmanager", "HERACLES_ALERTMANAGER_URL")):
            if name in self.components:
                lines.append(f"export {var}={self.component(name).address}")
        if "git" in self.components:
            lines.append(f"export HERACLES_GIT_URL={self.git.url()}")
        return "\n".join(lines)

    def rss_bytes(self) -> int:
        return sum(p.rss_bytes() for c in self.components.values() for p in c.processes())
