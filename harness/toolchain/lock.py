"""The toolchain lock: every pinned component version, read from one TOML file."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from harness.errors import HarnessError

SOURCES = ("go", "gomodule", "pypi", "debian")


@dataclass(frozen=True)
class ComponentSpec:
    """One locked component; `binaries` maps output name -> package path/file/path."""

    name: str
    source: str
    version: str
    binaries: dict[str, str]
    module: str = ""
    require: tuple[str, ...] = ()
    inherit_replaces: bool = False
    local_replace_version: str = ""
    ldflags_x: dict[str, str] = field(default_factory=dict)
    package: str = ""
    packages: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    smoke: tuple[str, ...] = ()
    smoke_expect: str = ""

    def fingerprint(self) -> str:
        """Hash of the recipe: a cache entry built from another recipe is stale. Empty
        fields are left out, so adding an optional field to the lock schema does not
        invalidate every cache entry."""
        recipe = {k: v for k, v in asdict(self).items() if v not in ((), {}, "", False)}
        blob = json.dumps(recipe, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Lock:
    path: Path
    go_minimum: str
    components: dict[str, ComponentSpec]

    def select(self, only: list[str] | None) -> list[ComponentSpec]:
        """The components named in `only` (all when empty), in lock order."""
        if not only:
            return list(self.components.values())
        unknown = [n for n in only if n not in self.components]
        if unknown:
            raise HarnessError(
                f"unknown toolchain component(s): {', '.join(unknown)}; "
                f"known: {', '.join(self.components)}"
            )
        return [c for n, c in self.components.items() if n in only]


def default_lock_path() -> Path:
    return Path(str(resources.files("harness.toolchain").joinpath("toolchain.lock.toml")))


def load_lock(path: Path | None = None) -> Lock:
    """Parse and validate the lock; errors name the file and the offending entry."""
    path = path or default_lock_path()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read toolchain lock: {exc}") from exc
    if raw.get("schema") != 1:
        raise HarnessError(f"{path}: unsupported lock schema {raw.get('schema')!r} (expected 1)")
    comps: dict[str, ComponentSpec] = {}
    for name, entry in raw.get("components", {}).items():
        source = entry.get("source")
        if source not in SOURCES:
            raise HarnessError(f"{path}: component {name!r}: source must be one of {SOURCES}")
        if not entry.get("version") or not (entry.get("binaries") or entry.get("files")):
            raise HarnessError(f"{path}: component {name!r}: needs version and binaries")
        if source in ("go", "gomodule") and not entry.get("module"):
            raise HarnessError(f"{path}: component {name!r}: a go component needs module")
        known = set(ComponentSpec.__dataclass_fields__) - {"name"}
        extra = set(entry) - known
        if extra:
            raise HarnessError(f"{path}: component {name!r}: unknown keys {sorted(extra)}")
        comps[name] = ComponentSpec(
            name=name,
            source=source,
            version=entry["version"],
            binaries=dict(entry.get("binaries", {})),
            module=entry.get("module", ""),
            require=tuple(entry.get("require", ())),
            inherit_replaces=bool(entry.get("inherit_replaces", False)),
            local_replace_version=entry.get("local_replace_version", ""),
            ldflags_x=dict(entry.get("ldflags_x", {})),
            package=entry.get("package", ""),
            packages=tuple(entry.get("packages", ())),
            files=dict(entry.get("files", {})),
            smoke=tuple(entry.get("smoke", ())),
            smoke_expect=entry.get("smoke_expect", ""),
        )
    go_minimum = str(raw.get("go", {}).get("minimum", "1.22"))
    return Lock(path=path, go_minimum=go_minimum, components=comps)
