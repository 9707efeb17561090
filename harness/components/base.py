"""The lifecycle every component shares (testcontainers' shape): start, ready, address,
logs, stop, kill — plus the per-process controls faults need (pause, resume, restart).

A component declares its processes as `ProcessSpec`s built from the environment's ports
and paths; process records (pid, start time) come from the state file, so the same
component object works whether this invocation started it or only attached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from harness.runtime.pki import PKI
from harness.runtime.process import ManagedProcess, ProcessSpec, log_tail
from harness.runtime.registry import RunRegistry
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.toolchain import Toolchain


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
    record: dict[str, Any] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)  # siblings, by name
    # In-cluster address -> local address (the platform's service map), for components
    # that write manifests somewhere the harness's apply step does not see (Git).
    service_map: Callable[[], dict[str, str]] = field(default=lambda: {})

    def port(self, key: str) -> int:
        return self.ports[key]


class Component:
    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
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

    # ---- to implement ------------------------------------------------------------------
    def prepare(self) -> None:
        """Create files the processes need (certificates, configs); idempotent."""

    def process_specs(self) -> list[ProcessSpec]:
        raise NotImplementedError

    def after_start(self) -> None:
        """Work once processes are ready (create nodes, ...); idempotent."""

    @property
    def address(self) -> str:
        raise NotImplementedError

    def endpoints(self) -> dict[str, str]:
        return {self.name: self.address}

    # ---- shared lifecycle --------------------------------------------------------------
    def processes(self) -> list[ManagedProcess]:
        if not self._procs:
            records = self.ctx.record.get("processes", {})
            for spec in self.process_specs():
                rec = records.get(spec.name, {})
                self._procs[spec.name] = ManagedProcess(
                    spec, self.ctx.run_id, self.ctx.registry.root,
                    pid=rec.get("pid"), create_time=rec.get("create_time"))
        return list(self._procs.values())

    def process(self, name: str) -> ManagedProcess:
        self.processes()
        return self._procs[name]

    def start(self, on_started=None) -> None:
        self.prepare()
        fresh = {s.name: s for s in self.process_specs()}  # prepare() may add files/keys
        for proc in self.processes():
            proc.spec = fresh[proc.name]
        for proc in self.processes():
            if proc.ready():
                continue  # repairing: a healthy process is neither restarted nor rolled back
            if proc.running():  # alive but not answering: replace it
                proc.stop()
            proc.start()
            if on_started:
                on_started(proc)
        self.after_start()

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

    def spec(self, name: str, argv: list[str], probe, data_dir: Path | None = None,
             env: dict[str, str] | None = None) -> ProcessSpec:
        """A ProcessSpec with this environment's log path and deadlines filled in."""
        return ProcessSpec(
            name=name, argv=argv, log_path=self.ctx.state.log(name), probe=probe,
            env=env or {}, data_dir=data_dir, start_timeout=self.ctx.settings.start_timeout,
            stop_grace=self.ctx.settings.stop_grace,
        )
