"""One settings object: every knob with its default and its environment-variable override.

| field           | default                                   | env var                  |
|-----------------|-------------------------------------------|--------------------------|
| profile         | dev                                       | HERACLES_PROFILE         |
| state_dir       | $XDG_STATE_HOME/heracles-harness/default  | HERACLES_STATE_DIR       |
| cache_dir       | $XDG_CACHE_HOME/heracles-harness          | HERACLES_CACHE_DIR       |
| registry_dir    | $XDG_STATE_HOME/heracles-harness/registry | HERACLES_REGISTRY_DIR    |
| components      | all of the profile                        | HERACLES_COMPONENTS      |
| start_timeout   | 60 s per process readiness deadline       | HERACLES_START_TIMEOUT   |
| stop_grace      | 10 s between SIGTERM and SIGKILL          | HERACLES_STOP_GRACE      |
| fixtures_dir    | the package's data (harness/fixtures)     | HERACLES_FIXTURES_DIR    |
| vault_binary    | "" = OpenBao `bao` from the toolchain     | HERACLES_VAULT_BINARY    |
| vault_values    | none = the harness's own HA config        | HERACLES_VAULT_VALUES    |
| time_scale      | 1 (rules' `for:` and windows as written)  | HERACLES_TIME_SCALE      |
| backup_interval | 3600 s between scheduled snapshots (prod) | HERACLES_BACKUP_INTERVAL |
| backup_keep     | 24 snapshots kept per kind (prod)         | HERACLES_BACKUP_KEEP     |
| db_backup_interval | 3600 s between database base backups   | HERACLES_DB_BACKUP_INTERVAL |
| db_lag_objective | 60 s: backup replication lag objective   | HERACLES_DB_LAG_OBJECTIVE |
| kind_image      | auto: built here if cached, else official | HERACLES_KIND_IMAGE      |
| git_in_cluster  | false: Argo CD is a process on the host    | -                        |
| parallel_start  | true: start along dependencies             | HERACLES_PARALLEL_START  |
| cluster_seed    | true: fresh etcd from the cached seed      | HERACLES_CLUSTER_SEED    |

The registry is machine-wide (runs and reserved ports of every session), so two sessions
with different state directories never collide; tests point it elsewhere to stay apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.resources import package_path

PROFILES = ("dev", "staging", "prod")


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise HarnessError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise HarnessError(f"{name}={raw!r} must be positive")
    return value


def _bool_env(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise HarnessError(f"{name}={raw!r} is not a boolean (1/0, true/false, yes/no, on/off)")


def _components_env() -> tuple[str, ...] | None:
    raw = os.environ.get("HERACLES_COMPONENTS", "")
    return parse_components(raw) if raw else None


def parse_components(raw: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in raw.split(",") if c.strip())


KIND_IMAGES = ("auto", "local", "official")


@dataclass(frozen=True)
class Settings:
    profile: str = field(default_factory=lambda: os.environ.get("HERACLES_PROFILE", "dev"))
    state_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("HERACLES_STATE_DIR")
        or _xdg("XDG_STATE_HOME", ".local/state") / "heracles-harness" / "default"))
    cache_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("HERACLES_CACHE_DIR")
        or _xdg("XDG_CACHE_HOME", ".cache") / "heracles-harness"))
    registry_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("HERACLES_REGISTRY_DIR")
        or _xdg("XDG_STATE_HOME", ".local/state") / "heracles-harness" / "registry"))
    components: tuple[str, ...] | None = field(default_factory=_components_env)
    start_timeout: float = field(
        default_factory=lambda: _float_env("HERACLES_START_TIMEOUT", 60.0))
    stop_grace: float = field(default_factory=lambda: _float_env("HERACLES_STOP_GRACE", 10.0))
    time_scale: float = field(
        default_factory=lambda: _float_env("HERACLES_TIME_SCALE", 1.0))
    backup_interval: float = field(
        default_factory=lambda: _float_env("HERACLES_BACKUP_INTERVAL", 3600.0))
    backup_keep: int = field(
        default_factory=lambda: int(_float_env("HERACLES_BACKUP_KEEP", 24)))
    db_backup_interval: float = field(
        default_factory=lambda: _float_env("HERACLES_DB_BACKUP_INTERVAL", 3600.0))
    db_lag_objective: float = field(
        default_factory=lambda: _float_env("HERACLES_DB_LAG_OBJECTIVE", 60.0))
    vault_binary: str = field(default_factory=lambda: os.environ.get(
        "HERACLES_VAULT_BINARY", ""))
    # The customer's Vault Helm values: their server config for staging/prod.
    vault_values: Path | None = field(default_factory=lambda: Path(
        os.environ["HERACLES_VAULT_VALUES"]) if os.environ.get("HERACLES_VAULT_VALUES")
        else None)
    # The kind node image: "local" (`harness images node-image`), "official" (kindest/node,
    # pulled), "auto" (local when built, else official).
    kind_image: str = field(default_factory=lambda: os.environ.get("HERACLES_KIND_IMAGE",
                                                                   "auto"))
    # Components start along their dependencies, at the same time where they can; off:
    # one after another, in order (the anchor `harness bench` reads the start against).
    parallel_start: bool = field(
        default_factory=lambda: _bool_env("HERACLES_PARALLEL_START", True))
    # A fresh etcd starts from the cached cluster seed (CRDs applied; backends/local/seed).
    cluster_seed: bool = field(
        default_factory=lambda: _bool_env("HERACLES_CLUSTER_SEED", True))
    # The Git server's clients are Pods of a cluster that is not the local control plane
    # (kind): in-cluster names resolve, so nothing is rewritten and credentials are asked.
    git_in_cluster: bool = False
    fixtures_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("HERACLES_FIXTURES_DIR") or package_path("fixtures")))

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise HarnessError(
                f"unknown profile {self.profile!r}; choose one of: {', '.join(PROFILES)}")
        if self.kind_image not in KIND_IMAGES:
            raise HarnessError(f"unknown kind image {self.kind_image!r}; choose one of: "
                               f"{', '.join(KIND_IMAGES)}")
        for name in ("state_dir", "cache_dir", "registry_dir"):
            path = Path(getattr(self, name)).expanduser().resolve()
            if path.exists() and not path.is_dir():
                raise HarnessError(f"{name.replace('_', ' ')} {path} is a file, not a "
                                   "directory")
            object.__setattr__(self, name, path)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
