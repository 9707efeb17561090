"""The lifecycle every component shares, in this order and with the same meaning
everywhere (each step idempotent, so `up` can repair a half-running environment):

1. `write_files()`  certificates, configs, directories — the disk only, no network;
2. `install()`      what its processes need from the components it requires, before
                    they run: CRDs and RBAC in the cluster, Vault policies and roles,
                    tokens;
3. processes        started from `process_specs()` (shared code below), each probed;
4. `configure()`    work on its own running processes: init/unseal, KWOK nodes, seeding;
5. `ready()`        every process answers its probe.

A component also declares what the rest of the environment needs to know of it: its
Prometheus scrape jobs (`scrape_jobs()`) and the in-cluster addresses it plays
(`service_aliases()`), so neither Prometheus nor the service map knows other classes.
Dependencies are typed: `self.ctx.require(Vault)`.

A component declares its processes as `ProcessSpec`s built from the environment's ports
and paths; process records (pid, start time) come from the state file, so the same
component object works whether this invocation started it or only attached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from harness.errors import HarnessError
from harness.runtime.graph import run_graph
from harness.runtime.pki import PKI
from harness.runtime.process import ManagedProcess, Probe, ProcessSpec, log_tail
from harness.runtime.registry import RunRegistry
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.toolchain import Toolchain

C = TypeVar("C", bound="Component")
# Work a component runs while its processes start: (processes it waits for, the work).
Step = tuple[tuple[str, ...], Callable[[], None]]


@dataclass
class Context:
    """What a component may use: settings, paths, binaries, ports, PKI, run identity."""

    settings: Settings
    state: StateDir
    toolchain: Toolchain
    registry: RunRegistry
    pki: PKI
    run_id: str
    ports: dict[str, int]
    # Process records (pid, start time) by process name, from the state file.
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)  # siblings, by name
    # In-cluster address -> local address (the platform's service map), for components
    # that write manifests somewhere the harness's apply step does not see (Git).
    service_map: Callable[[], dict[str, str]] = field(default=lambda: {})
    # Runs `action` ("start", "restart") on one of the environment's processes under the
    # state lock and records its new pid: set by the environment.
    process_control: Callable[[ManagedProcess, str], None] = field(
        default=lambda proc, action: getattr(proc, action)())

    def port(self, key: str) -> int:
        return self.ports[key]

    def require(self, kind: type[C]) -> C:
        """The sibling component of that class: a typed dependency."""
        for comp in self.components.values():
            if isinstance(comp, kind):
                return comp
        raise HarnessError(f"{kind.__name__} is not part of this environment "
                           f"(running: {', '.join(self.components) or 'none'})")

    def optional(self, kind: type[C]) -> C | None:
        """The sibling component of that class, if the environment has one."""
        return next((c for c in self.components.values() if isinstance(c, kind)), None)


class Component:
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    # Components started first when they are part of the environment, though not needed.
    start_after: ClassVar[tuple[str, ...]] = ()
    port_names: ClassVar[tuple[str, ...]] = ()
    port_spans: ClassVar[dict[str, int]] = {}  # ports that also take the next one
    toolchain: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._procs: dict[str, ManagedProcess] = {}

    def tools(self) -> tuple[str, ...]:
        """Toolchain components whose binaries this component runs (preflight checks)."""
        return self.toolchain

    def preflight(self) -> None:
        """Raise HarnessError if this component's configuration cannot run, before
        anything of the environment starts."""

    def wanted_ports(self) -> dict[str, int]:
        """Port name -> span (consecutive ports) this component needs in this profile."""
        return {n: self.port_spans.get(n, 1) for n in self.port_names}

    # ---- to implement (see the module docstring for the order) -------------------------
    def write_files(self) -> None:
        """Certificates, configs and directories its processes need: disk only."""

    def install(self) -> None:
        """What its processes need from the components it requires, before they run
        (CRDs, RBAC, Vault policies/roles, tokens); idempotent."""

    def process_specs(self) -> list[ProcessSpec]:
        raise NotImplementedError

    def configure(self) -> None:
        """Work on its own running processes (init/unseal, nodes, seeding); idempotent.
        Also runs when `up` attaches to a running environment."""

    def crd_files(self) -> list[Path]:
        """The CustomResourceDefinitions it installs (manifest files): the cluster seed
        holds them already applied (harness/backends/local/seed.py)."""
        return []

    def scrape_jobs(self) -> list[dict[str, Any]]:
        """What Prometheus scrapes of this component: `scrape_configs` entries."""
        return []

    def service_aliases(self) -> dict[str, str]:
        """In-cluster address -> local address, for every Service this component plays."""
        return {}

    def rule_files(self) -> list[Path]:
        """Alerting rules that watch this component: Prometheus loads them only when the
        component is part of the environment."""
        return []

    def status_details(self) -> dict[str, Any]:
        """What `harness status --json` adds for this component beyond its processes."""
        return {}

    @property
    def address(self) -> str:
        raise NotImplementedError

    def endpoints(self) -> dict[str, str]:
        return {self.name: self.address}

    # ---- shared lifecycle --------------------------------------------------------------
    def processes(self) -> list[ManagedProcess]:
        if not self._procs:
            records = self.ctx.processes
            for spec in self.process_specs():
                rec = records.get(spec.name, {})
                self._procs[spec.name] = ManagedProcess(
                    spec, self.ctx.run_id, self.ctx.registry.root,
                    pid=rec.get("pid"), create_time=rec.get("create_time"))
        return list(self._procs.values())

    def process(self, name: str) -> ManagedProcess:
        self.processes()
        return self._procs[name]

    def start(self, on_started: Callable[[ManagedProcess], None] | None = None) -> None:
        """The whole lifecycle: files, install, processes, configure."""
        self.write_files()
        self.install()
        fresh = {s.name: s for s in self.process_specs()}  # the steps above may add files
        for proc in self.processes():
            proc.spec = fresh[proc.name]
        start_concurrently(self.processes(), on_started, self.start_steps(),
                           sequential=not self.ctx.settings.parallel_start)
        self.configure()

    def start_steps(self) -> dict[str, Step]:
        """Work that runs while its processes start, once the processes it names are
        ready: name -> (those processes, the work). `configure` still runs after all."""
        return {}

    def start_process(self, name: str) -> ManagedProcess:
        """Start one of its processes (after a fault or a restore); the state file
        follows its new pid."""
        proc = self.process(name)
        self.ctx.process_control(proc, "start")
        return proc

    def restart_process(self, name: str) -> ManagedProcess:
        """Graceful restart on the same data directory and ports."""
        proc = self.process(name)
        self.ctx.process_control(proc, "restart")
        return proc

    def ready(self) -> bool:
        return all(p.ready() for p in self.processes())

    def logs(self) -> dict[str, Path]:
        return {p.name: p.spec.log_path for p in self.processes()}

    def log_tails(self, lines: int = 30) -> dict[str, str]:
        return {name: log_tail(path, lines) for name, path in self.logs().items()}

    def stop(self) -> None:
        for proc in reversed(self.processes()):
            proc.stop()

    def kill(self) -> None:
        for proc in reversed(self.processes()):
            proc.kill()

    def temp_paths(self) -> list[Path]:
        """Paths its processes create outside the state directory (none by default):
        recorded at start, removed at `down` or by the reaper of a dead run."""
        return []

    def secret_files(self) -> list[Path]:
        """Files holding one secret each (a token): registered with the redactor."""
        return []

    def register_secrets(self) -> None:
        """Teach the redactor this component's secrets (called whenever it is loaded)."""
        from harness.runtime.redact import REDACTOR

        for path in self.secret_files():
            if path.exists():
                REDACTOR.add(path.read_text().strip())

    def bin(self, component: str, name: str) -> str:
        return str(self.ctx.toolchain.binary(component, name))

    def spec(self, name: str, argv: list[str], probe: Probe, data_dir: Path | None = None,
             env: dict[str, str] | None = None,
             after: tuple[str, ...] | None = None,
             stop_grace: float | None = None) -> ProcessSpec:
        """A ProcessSpec with this environment's log path and deadlines filled in;
        `after` as in ProcessSpec (None: after the process listed before it);
        `stop_grace` at most the settings' (None: the settings')."""
        grace = self.ctx.settings.stop_grace
        return ProcessSpec(
            name=name, argv=argv, log_path=self.ctx.state.log(name), probe=probe,
            env=env or {}, data_dir=data_dir, start_timeout=self.ctx.settings.start_timeout,
            stop_grace=grace if stop_grace is None else min(grace, stop_grace), after=after,
        )


def process_dependencies(procs: list[ManagedProcess]) -> dict[str, tuple[str, ...]]:
    """Name -> the processes it waits for: its spec's `after`, or the one listed before."""
    names = [p.name for p in procs]
    return {proc.name: (proc.spec.after if proc.spec.after is not None
                        else (names[i - 1],) if i else ())
            for i, proc in enumerate(procs)}


def start_concurrently(procs: list[ManagedProcess],
                       on_started: Callable[[ManagedProcess], None] | None = None,
                       steps: dict[str, Step] | None = None,
                       sequential: bool = False) -> None:
    """Start each process that is not ready once those it waits for are ready (at the
    same time when nothing is left to wait for), and run each step once the processes it
    names are; `sequential`: one after another, in order, steps last. A healthy process
    is neither restarted nor rolled back (repairing); one alive but not answering is
    replaced."""
    by_name = {p.name: p for p in procs}
    steps = steps or {}

    def bring(name: str) -> None:
        if name in steps:
            steps[name][1]()
            return
        proc = by_name[name]
        if proc.ready():
            return
        if proc.running():
            proc.stop()
        proc.start()
        if on_started:
            on_started(proc)

    deps: dict[str, tuple[str, ...]] = {**process_dependencies(procs),
                                        **{name: after for name, (after, _) in steps.items()}}
    order = _stable_order([*by_name, *steps], deps)
    if sequential or (not steps and all(deps[p.name] == ((procs[i - 1].name,) if i else ())
                                        for i, p in enumerate(procs))):
        for name in order:  # one after another: no threads needed
            bring(name)
        return
    run_graph(order, deps, bring)


def _stable_order(names: list[str], deps: dict[str, tuple[str, ...]]) -> list[str]:
    """`names` with each after what it waits for (a process may wait for a step), else
    in the order given."""
    placed: list[str] = []
    pending = list(names)
    while pending:
        ready = next((n for n in pending if all(d in placed or d not in names
                                                for d in deps.get(n, ()))), pending[0])
        placed.append(ready)
        pending.remove(ready)
    return placed
