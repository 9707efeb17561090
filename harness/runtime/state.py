"""The environment's state directory: `environment.json` plus per-component data and logs.

Layout::

    <state>/environment.json   schema, run id, profile, status, ports, process records
    <state>/kubeconfig         admin kubeconfig (stable path; `harness env` prints it)
    <state>/pki/               CA, certificates, keys (0600)
    <state>/data/<name>/       data directories (kept across restart)
    <state>/logs/<name>.log    one log per process
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.errors import HarnessError

SCHEMA = 1


class _NamedLock(FileLock):
    """A state-dir lock whose time-out says who to wait for, instead of a traceback."""

    def __enter__(self) -> _NamedLock:
        from filelock import Timeout

        try:
            super().__enter__()
        except Timeout:
            raise HarnessError(f"another harness command has held {self.lock_file} for "
                               "5 minutes; wait for it, or stop it") from None
        return self


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "environment.json"

    def lock(self) -> FileLock:
        """Held by whoever changes this environment (up/down), so two never interleave."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HarnessError(f"cannot use state directory {self.root}: {exc}") from exc
        return _NamedLock(str(self.root / ".lock"), timeout=300)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def data(self, name: str) -> Path:
        return self.root / "data" / name

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    def load(self) -> dict[str, Any] | None:
        """The recorded environment, or None; refuses a state dir of another schema."""
        if not self.file.exists():
            foreign = [p.name for p in self.root.iterdir()] if self.root.exists() else []
            if set(foreign) - {".lock"}:
                raise HarnessError(
                    f"{self.root} is not a heracles-harness state directory (no "
                    "environment.json) and is not empty; choose another --state-dir")
            return None
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{self.file}: unreadable environment state: {exc}") from exc
        if data.get("schema") != SCHEMA:
            raise HarnessError(
                f"{self.root} was written by an incompatible heracles-harness (state schema "
                f"{data.get('schema')!r}, this version uses {SCHEMA}); stop it with that "
                f"version, or remove the directory (`harness down --purge --state-dir "
                f"{self.root}`), or pick another --state-dir")
        return dict(data)

    def save(self, data: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data["schema"] = SCHEMA
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.file)


def remove_temp_paths(paths: list[str]) -> None:
    """Remove what a run kept outside its state directory (a component's `temp_paths`:
    sockets whose path a program fixes, or a state path too long for a socket address).
    Only paths inside the system temp dir are touched, whatever the record says."""
    import shutil
    import tempfile

    # /tmp too: SeaweedFS writes its sockets there whatever TMPDIR says.
    temps = {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}
    for raw in paths:
        path = Path(raw)
        if not temps & set(path.resolve().parents):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
