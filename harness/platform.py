"""The platform: components composed per profile, brought up, attached to, torn down.

`up()` is idempotent: in a state directory whose environment is running, it attaches
(checking each process's readiness) and starts only what is missing. A failed start
stops everything that this call started and leaves the environment as it found it.
The service map (in-cluster DNS name -> local address) lives here too, because only the
platform knows which local process plays which in-cluster Service.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

from harness.components.argocd import ArgoCD
from harness.components.backup import Backup
from harness.components.base import Component, Context
from harness.components.eso import ExternalSecrets
from harness.components.etcd import Etcd
from harness.components.git import GitServer
from harness.components.kube import Kube
from harness.components.netfault import NetFault
from harness.components.observability import Alertmanager, Prometheus
from harness.components.vault import Vault
from harness.errors import ComponentStartError, HarnessError
from harness.runtime.pki import PKI
from harness.runtime.probes import hostport
from harness.runtime.process import ManagedProcess
from harness.runtime.redact import redact
from harness.runtime.registry import RunRegistry, kill_processes, new_run_id, processes_of_run
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.toolchain import Toolchain

COMPONENTS: dict[str, type[Component]] = {
    "etcd": Etcd, "kube": Kube, "vault": Vault, "eso": ExternalSecrets,
    "alertmanager": Alertmanager, "prometheus": Prometheus, "netfault": NetFault,
    "git": GitServer, "argocd": ArgoCD, "backup": Backup}
"""Every component the local backend can run, in start order."""

_ALL = ("etcd", "kube", "vault", "eso", "alertmanager", "prometheus", "netfault", "git",
        "argocd")
PROFILE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "dev": _ALL,
    "staging": _ALL,
    "prod": (*_ALL, "backup"),
}


def resolve_components(names: tuple[str, ...] | list[str]) -> list[str]:
    """Add dependencies and order by start order; unknown names are an error."""
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise HarnessError(f"unknown component(s): {', '.join(unknown)}; "
                           f"known: {', '.join(COMPONENTS)}")
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in COMPONENTS[name].requires:
                add(dep)

    for n in names:
        add(n)
    return [n for n in COMPONENTS if n in wanted]


Events = Callable[[str], None]


class Platform:
    backend = "local"

    def __init__(self, settings: Settings | None = None,
                 toolchain: Toolchain | None = None) -> None:
        self.settings = settings or Settings()
        self.state = StateDir(self.settings.state_dir)
        self.registry = RunRegistry(self.settings.registry_dir)
        self.toolchain = toolchain or Toolchain(self.settings.cache_dir)
        self.record: dict[str, Any] = {}
        self.components: dict[str, Component] = {}
        self.timings: dict[str, float] = {}

    # ---- construction ------------------------------------------------------------------
    def _context(self) -> Context:
        return Context(settings=self.settings, state=self.state, toolchain=self.toolchain,
                       registry=self.registry, pki=PKI(self.state.pki_dir),
                       run_id=self.record["run_id"], ports=self.record.setdefault("ports", {}),
                       record=self.record, service_map=self.service_map)

    def _adopt(self, record: dict[str, Any]) -> None:
        """Take over a recorded environment: its profile decides its shape (ports, nodes),
        whatever profile this invocation was given by default."""
        self.record = record
        if record.get("profile") in PROFILE_COMPONENTS:
            self.settings = self.settings.with_(profile=record["profile"])
        if record.get("time_scale"):  # rules were scaled when it started: keep that
            self.settings = self.settings.with_(time_scale=float(record["time_scale"]))
        if record.get("vault_values"):  # its Vault nodes come from the customer's values
            from pathlib import Path

            self.settings = self.settings.with_(vault_values=Path(record["vault_values"]))

    def _build(self, names: list[str]) -> None:
        ctx = self._context()
        self.components = {n: COMPONENTS[n](ctx) for n in names}
        ctx.components.update(self.components)
        for comp in self.components.values():
            comp.register_secrets()

    def component(self, name: str) -> Component:
        if name not in self.components:
            raise HarnessError(f"component {name!r} is not part of this environment "
                               f"(running: {', '.join(self.components) or 'none'})")
        return self.components[name]

    @property
    def kube(self) -> Kube:
        comp = self.component("kube")
        assert isinstance(comp, Kube)
        return comp

    @property
    def git(self) -> GitServer:
        comp = self.component("git")
        assert isinstance(comp, GitServer)
        return comp

    @property
    def kubeconfig(self) -> str:
        return str(self.state.kubeconfig)

    @property
    def kubectl(self) -> str:
        return str(self.toolchain.binary("kubernetes", "kubectl"))

    # ---- up / attach / down ------------------------------------------------------------
    def up(self, components: list[str] | None = None, mode: str = "detached",
           events: Events = lambda _m: None) -> Platform:
        started = time.monotonic()
        reaped = self.registry.reap()
        if reaped:
            events(f"reaped leftovers of dead run(s): {', '.join(reaped)}")
        names = resolve_components(
            components or self.settings.components or PROFILE_COMPONENTS[self.settings.profile])
        with self.state.lock():
            previous = self.state.load()
            live = (previous is not None and previous.get("status") in ("up", "starting")
                    and self.registry.get(previous["run_id"]) is not None)
            if live and previous is not None:
                if previous.get("profile") != self.settings.profile:
                    raise HarnessError(
                        f"the environment in {self.state.root} runs profile "
                        f"{previous.get('profile')!r}, not {self.settings.profile!r}; run "
                        "`harness down` first or choose another --state-dir")
                self._adopt(previous)
                names = resolve_components(list(dict.fromkeys(
                    [*previous.get("components", []), *names])))
            else:
                if previous and previous.get("run_id"):
                    # Not live by the registry's account (wiped, or another registry):
                    # whatever that run left running on these data dirs goes first.
                    kill_processes(processes_of_run(previous["run_id"]))
                self.record = {**(previous or {}), "run_id": new_run_id(),
                               "profile": self.settings.profile, "processes": {},
                               "time_scale": self.settings.time_scale,
                               "vault_values": str(self.settings.vault_values or "") or None,
                               "created": time.time()}
            self.record["components"] = names
            self._build(names)
            self._preflight()
            if not live:
                # Owned by this process until ready: if we die mid-start, we get reaped
                # (and so are the ports reserved next).
                self.registry.register(self.record["run_id"], self.state.root, "starting")
            try:
                self._reserve_ports(fresh=not live)
            except BaseException:
                if not live:
                    self.registry.forget(self.record["run_id"])
                raise
            self.record["status"] = "starting"
            self.state.save(self.record)
            started_now: list[ManagedProcess] = []
            try:
                for name, comp in self.components.items():
                    t0 = time.monotonic()
                    if comp.ready():
                        comp.after_start()
                        events(f"{name}: attached ({comp.address})")
                        continue
                    events(f"{name}: starting")

                    def on_started(proc: ManagedProcess) -> None:
                        started_now.append(proc)
                        self.record["processes"][proc.name] = proc.record()
                        self.state.save(self.record)

                    try:
                        comp.start(on_started=on_started)
                    except HarnessError:
                        raise
                    except Exception as exc:  # a client library's error while wiring up
                        raise ComponentStartError(redact(
                            f"{name}: setup after start failed: {type(exc).__name__}: {exc}"
                        )) from exc
                    self.timings[name] = time.monotonic() - t0
                    events(f"{name}: ready in {self.timings[name]:.1f}s ({comp.address})")
            except BaseException:
                for proc in reversed(started_now):
                    proc.stop(grace=3)
                    self.record["processes"].pop(proc.name, None)
                if not live:
                    kill_processes(processes_of_run(self.record["run_id"]))
                    self.registry.forget(self.record["run_id"])
                    self.record["status"] = "down"
                else:
                    self.record["status"] = "up"
                    self.registry.set_mode(self.record["run_id"], "detached")
                self.state.save(self.record)
                raise
            self.record["status"] = "up"
            self.record["endpoints"] = self.endpoints()
            self.state.save(self.record)
            self.registry.set_mode(self.record["run_id"], mode)
        self.timings["total"] = time.monotonic() - started
        return self

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

    def _reserve_ports(self, fresh: bool) -> None:
        ports: dict[str, int] = self.record.setdefault("ports", {})
        spans = {k: v for c in self.components.values()
                 for k, v in c.wanted_ports().items() if v > 1}
        wanted = [p for c in self.components.values() for p in c.wanted_ports()]
        if fresh:
            # Ports of an environment that went down are re-used when still free, so
            # data directories that remember addresses (etcd) stay consistent.
            keep = self.registry.ports.reserve(self.record["run_id"], {
                k: v for k, v in ports.items() if k in wanted and k not in spans})
            ports.clear()
            ports.update(keep)
        for key in (p for p in wanted if p not in ports):
            [ports[key]] = self.registry.ports.allocate(self.record["run_id"], 1,
                                                        span=spans.get(key, 1))

    def attach(self) -> Platform:
        """Bind to the running environment of this state directory, without starting."""
        t0 = time.monotonic()
        record = self.state.load()
        if record is None or record.get("status") != "up":
            raise HarnessError(f"no running environment in {self.state.root}; "
                               "run `harness up` first")
        self._adopt(record)
        self._build(record["components"])
        not_ready = [p.name for c in self.components.values() for p in c.processes()
                     if not p.ready()]
        if not_ready:
            raise HarnessError(f"environment in {self.state.root} is not healthy: "
                               f"{', '.join(not_ready)} not ready; run `harness up` to repair")
        self.timings["attach"] = time.monotonic() - t0
        return self

    def down(self, purge: bool = False, events: Events = lambda _m: None) -> None:
        with self.state.lock():
            record = self.state.load()
            if record is None:
                events(f"no environment in {self.state.root}")
            else:
                self._adopt(record)
                self._build([n for n in record.get("components", []) if n in COMPONENTS])
                for name, comp in reversed(self.components.items()):
                    comp.stop()
                    events(f"{name}: stopped")
                strays = processes_of_run(record["run_id"])
                if strays:
                    kill_processes(strays)
                    events(f"killed {len(strays)} stray process(es) of run {record['run_id']}")
                self.registry.forget(record["run_id"])
                record["status"] = "down"
                record["processes"] = {}
                self.state.save(record)
        if purge and self.state.root.exists():
            shutil.rmtree(self.state.root)
            events(f"removed {self.state.root}")

    # ---- process controls (faults use these: the state file must follow every pid) ----
    def process(self, name: str) -> ManagedProcess:
        for comp in self.components.values():
            for proc in comp.processes():
                if proc.name == name:
                    return proc
        raise HarnessError(f"no process {name!r} in this environment")

    def _record_process(self, proc: ManagedProcess) -> None:
        """Merge one process's new pid into the state file as it is now (another
        command may have changed it since we loaded it)."""
        current = self.state.load() or self.record
        current.setdefault("processes", {})[proc.name] = proc.record()
        self.state.save(current)
        self.record.update(current)

    def _control(self, name: str, action: str) -> ManagedProcess:
        """start/restart a process under the state lock, recording its new pid."""
        with self.state.lock():
            proc = self.process(name)
            getattr(proc, action)()
            self._record_process(proc)
        return proc

    def restart_process(self, name: str) -> ManagedProcess:
        """Graceful restart on the same data directory and ports."""
        return self._control(name, "restart")

    def start_process(self, name: str) -> ManagedProcess:
        return self._control(name, "start")

    # ---- cluster state (etcd) backup and restore -----------------------------------------
    def _kube_clients(self) -> list[ManagedProcess]:
        """Processes holding Kubernetes watch caches, in start order: the apiserver and
        controllers, and every component that requires kube (ESO, ...)."""
        return [p for n, c in self.components.items()
                if n == "kube" or "kube" in c.requires for p in c.processes()]

    def restore_cluster_state(self, snapshot: Any, step: Events = lambda _m: None) -> None:
        """Replace the cluster state with an etcd snapshot, as the Kubernetes docs say to:
        stop every apiserver client and the apiserver, restore etcd's data directory,
        start etcd, then everything again (their caches are newer than the restored
        state). The snapshot is checked first, so a bad file changes nothing."""
        from pathlib import Path

        etcd = self.component("etcd")
        assert isinstance(etcd, Etcd)
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

    def install_crds(self, name: str, events: Events = lambda _m: None) -> list[str]:
        """Server-side apply a CRD set from the toolchain cache (never the internet)."""
        from kubernetes.dynamic import DynamicClient

        from harness import manifests

        if name not in self.CRD_SETS:
            raise HarnessError(f"unknown CRD set {name!r}; known: {', '.join(self.CRD_SETS)}")
        tool = self.CRD_SETS[name]
        files = [self.toolchain.file(tool, f) for f in self.toolchain.spec(tool).files]
        docs = manifests.load(files)
        dyn = DynamicClient(self.kube.api_client())
        manifests.validate(docs, dyn)
        manifests.apply(docs, dyn, events)
        return [d.name for d in docs]

    def after_apply(self, docs: list[Any]) -> None:
        """Applied PrometheusRules become Prometheus rules (time-scaled) at once."""
        if "prometheus" in self.components and any(
                getattr(d, "kind", "") == "PrometheusRule" for d in docs):
            prom = self.component("prometheus")
            assert isinstance(prom, Prometheus)
            prom.reload()

    # ---- inspection --------------------------------------------------------------------
    def endpoints(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for comp in self.components.values():
            out.update(comp.endpoints())
        return out

    def service_map(self) -> dict[str, str]:
        """In-cluster service address -> local address (the apply step rewrites these)."""
        out = {}
        if "kube" in self.components:
            out["https://kubernetes.default.svc:443"] = self.kube.address
            out["https://kubernetes.default.svc"] = self.kube.address
        if "git" in self.components:
            from harness.components.git import IN_CLUSTER_URL

            out[IN_CLUSTER_URL] = self.component("git").address
        if "vault" in self.components:
            vault = self.component("vault")
            assert isinstance(vault, Vault)
            target_hp = hostport(vault.address)
            if "netfault" in self.components:  # through Toxiproxy: faults can be injected
                net = self.component("netfault")
                assert isinstance(net, NetFault)
                target_hp = net.proxy_address("vault")
            for name in ("vault.vault.svc.cluster.local", "vault.vault.svc", "vault.vault"):
                for scheme in ("http", "https"):
                    # HA Vault speaks TLS only: the scheme is kept, so a store written
                    # with http:// fails as it would in the cluster. The dev server has
                    # no TLS (the spec's "simplified TLS"): both schemes reach it.
                    target = f"{scheme if vault.tls else 'http'}://{target_hp}"
                    out[f"{scheme}://{name}:8200"] = target
        return out

    def status(self) -> dict[str, Any]:
        record = self.state.load()
        if record is None:
            return {"state_dir": str(self.state.root), "status": "absent", "components": {}}
        self._adopt(record)
        self._build([n for n in record.get("components", []) if n in COMPONENTS])
        comps = {}
        for name, comp in self.components.items():
            procs = {}
            for p in comp.processes():
                procs[p.name] = {"pid": p.pid if p.running() else None,
                                 "running": p.running(), "ready": p.ready(),
                                 "log": str(p.spec.log_path)}
            comps[name] = {"address": comp.address, "ready": all(
                v["ready"] for v in procs.values()), "processes": procs}
        return {"state_dir": str(self.state.root), "status": record.get("status"),
                "run_id": record.get("run_id"), "profile": record.get("profile"),
                "kubeconfig": str(self.state.kubeconfig), "components": comps}

    def env_exports(self) -> str:
        record = self.state.load()
        if record is None or record.get("status") != "up":
            raise HarnessError(f"no running environment in {self.state.root}")
        self._adopt(record)
        self._build(record["components"])
        lines = [f"export HERACLES_STATE_DIR={self.state.root}"]
        if "kube" in self.components:
            kubectl = self.toolchain.binary("kubernetes", "kubectl")
            lines += [f"export KUBECONFIG={self.state.kubeconfig}",
                      f"export HERACLES_KUBE_APISERVER={self.kube.address}",
                      f"export PATH={kubectl.parent}:$PATH"]
        if "etcd" in self.components:
            lines.append(f"export ETCDCTL_ENDPOINTS={self.component('etcd').address}")
        if "vault" in self.components:
            vault = self.component("vault")
            assert isinstance(vault, Vault)
            bao = self.toolchain.binary("openbao", "bao")
            # The token itself is never printed: the shell reads it from its 0600 file.
            lines += [f"export VAULT_ADDR={vault.address} BAO_ADDR={vault.address}",
                      f'export VAULT_TOKEN="$(cat {vault.root_token_file})"',
                      'export BAO_TOKEN="$VAULT_TOKEN"',
                      *([f"export VAULT_CACERT={vault.ctx.pki.ca_cert} "
                         f"BAO_CACERT={vault.ctx.pki.ca_cert}"] if vault.tls else []),
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
