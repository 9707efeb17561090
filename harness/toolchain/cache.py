"""Binary cache: one directory per component+version, trusted only through its manifest.

An entry is written into a temporary directory and renamed into place with its manifest
written last, so an interrupted build never leaves something that looks complete. Every
read re-checks sizes and SHA-256 digests: a truncated or altered binary is reported as
corrupt and rebuilt, never run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.toolchain.lock import ComponentSpec

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class EntryState:
    """What the cache holds for one component: `ok`, `missing`, `stale` or `corrupt`."""

    state: str
    detail: str = ""
    manifest: dict | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


class BinaryCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_dir(self, spec: ComponentSpec) -> Path:
        return self.root / "toolchain" / spec.name / spec.version

    def bin_path(self, spec: ComponentSpec, binary: str) -> Path:
        return self.entry_dir(spec) / "bin" / binary

    def file_path(self, spec: ComponentSpec, name: str) -> Path:
        return self.entry_dir(spec) / "files" / name

    @staticmethod
    def members(spec: ComponentSpec) -> dict[str, tuple[str, bool]]:
        """manifest key -> (path relative to the entry, executable?)."""
        out = {b: (f"bin/{b}", True) for b in spec.binaries}
        out.update({f"files/{f}": (f"files/{f}", False) for f in spec.files})
        return out

    def build_dir(self, spec: ComponentSpec) -> Path:
        """The consumer Go module lives here (kept: `go build` reuses its go.sum)."""
        return self.root / "build" / f"{spec.name}-{spec.version}"

    def check(self, spec: ComponentSpec, deep: bool = True) -> EntryState:
        """Verify an entry. `deep` hashes every binary; shallow compares size + mtime,
        which catches truncation and rewrites at start-up cost near zero."""
        entry = self.entry_dir(spec)
        manifest_path = entry / MANIFEST
        if not entry.exists():
            return EntryState("missing", "not built")
        if not manifest_path.exists():
            return EntryState("corrupt", "no manifest (partial entry)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            return EntryState("corrupt", f"unreadable manifest: {exc}")
        if manifest.get("fingerprint") != spec.fingerprint():
            return EntryState("stale", "built from another recipe", manifest)
        files: dict[str, dict] = manifest.get("files", {})
        members = self.members(spec)
        if set(files) != set(members):
            return EntryState("corrupt", "manifest lists other files", manifest)

        def verify(name: str) -> str:
            rel, executable = members[name]
            path = entry / rel
            want = files[name]
            if not path.is_file():
                return f"{name}: missing"
            if path.stat().st_size != want["size"]:
                return f"{name}: size {path.stat().st_size} != {want['size']} (truncated?)"
            if not deep and path.stat().st_mtime_ns != want.get("mtime_ns"):
                return f"{name}: modified since it was cached"
            if deep and sha256_file(path) != want["sha256"]:
                return f"{name}: checksum mismatch"
            if executable and not os.access(path, os.X_OK):
                return f"{name}: not executable"
            return ""

        with ThreadPoolExecutor(max_workers=4) as pool:
            problems = [p for p in pool.map(verify, sorted(files)) if p]
        if problems:
            return EntryState("corrupt", "; ".join(problems), manifest)
        return EntryState("ok", "", manifest)

    def commit(self, spec: ComponentSpec, staged_bin: Path, extra: dict) -> Path:
        """Move a staged `bin/` into the cache atomically, manifest last."""
        entry = self.entry_dir(spec)
        tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "bin").mkdir(parents=True)
        files = {}
        for name, (rel, executable) in self.members(spec).items():
            src = staged_bin / (name if executable else rel)
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            dst.chmod(0o755 if executable else 0o644)
            st = dst.stat()
            files[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                           "sha256": sha256_file(dst)}
        manifest = {
            "component": spec.name,
            "version": spec.version,
            "fingerprint": spec.fingerprint(),
            "files": files,
            "created": time.time(),
            **extra,
        }
        shutil.rmtree(entry, ignore_errors=True)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(entry)
        tmp_manifest = entry / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=2))
        tmp_manifest.rename(entry / MANIFEST)
        return entry

    def discard(self, spec: ComponentSpec) -> None:
        shutil.rmtree(self.entry_dir(spec), ignore_errors=True)
