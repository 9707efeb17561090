"""What a local environment's state file (`<state>/environment.json`) holds, and the only
ways its status may change.

The record is the environment's memory across commands: its run id (every process
carries it, so a dead run can be reaped), profile and components, the ports it holds
(re-used after `down` while free, so data directories that remember addresses stay
consistent) and each process's pid and start time. It is written after every change,
under the state directory's lock.

    (none) --begin_start--> starting --started--> up --stopped--> down
                               |                  |
                               +--start_failed--> down   (a fresh start: nothing kept)
                                                  up     (a repair of a running one)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runtime.registry import RunRegistry
from harness.runtime.state import StateDir


class Status(StrEnum):
    STARTING = "starting"
    UP = "up"
    DOWN = "down"


class RecordError(HarnessError):
    """A status change the lifecycle does not allow (a bug, never user input)."""


@dataclass
class EnvironmentRecord:
    run_id: str
    profile: str
    status: Status = Status.DOWN
    components: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    # In-cluster address -> local address when it last ran: what objects in etcd and the
    # seeded Git repo hold, so a moved port can be re-pointed on the next `up`.
    service_map: dict[str, str] = field(default_factory=dict)
    time_scale: float | None = None
    vault_values: str | None = None
    created: float = 0.0
    # What its processes keep outside the state directory (Component.temp_paths): removed
    # at `down`, and by the reaper when the run died.
    temp_paths: list[str] = field(default_factory=list)
    # Keys written by another version of the harness are kept as they are.
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- file form -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnvironmentRecord:
        known = {f.name for f in fields(cls)} - {"extra"}
        if not data.get("run_id") or not data.get("profile"):
            raise HarnessError("environment record without run_id/profile: the state "
                               "file is damaged; `harness down --purge` removes it")
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            kwargs["status"] = Status(data.get("status") or Status.DOWN)
        except ValueError:
            raise HarnessError(f"environment record with unknown status "
                               f"{data.get('status')!r}: the state file is damaged; "
                               "`harness down --purge` removes it") from None
        extra = {k: v for k, v in data.items() if k not in known and k != "schema"}
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        extra = out.pop("extra")
        out["status"] = str(self.status)
        return {**extra, **out}

    @classmethod
    def load(cls, state: StateDir) -> EnvironmentRecord | None:
        data = state.load()
        return None if data is None else cls.from_dict(data)

    def save(self, state: StateDir) -> None:
        state.save(self.to_dict())

    # ---- questions asked in many places ----------------------------------------------
    @property
    def is_up(self) -> bool:
        """Recorded as running (the processes themselves may have died since)."""
        return self.status is Status.UP

    def is_live(self, registry: RunRegistry) -> bool:
        """Up or starting, and its run still registered (not reaped, not wiped)."""
        return (self.status in (Status.UP, Status.STARTING)
                and registry.get(self.run_id) is not None)

    # ---- transitions -----------------------------------------------------------------
    @classmethod
    def fresh(cls, previous: EnvironmentRecord | None, run_id: str, profile: str,
              time_scale: float | None, vault_values: str | None) -> EnvironmentRecord:
        """A new run in a state directory: the previous run's ports are offered again,
        everything else starts over."""
        return cls(run_id=run_id, profile=profile, status=Status.DOWN,
                   ports=dict(previous.ports) if previous else {},
                   service_map=dict(previous.service_map) if previous else {},
                   time_scale=time_scale, vault_values=vault_values,
                   created=time.time(), extra=dict(previous.extra) if previous else {})

    def begin_start(self) -> None:
        """From any state: a fresh run, a repair of a running one, or a run whose start
        was interrupted (its leftovers were reaped first)."""
        self.status = Status.STARTING

    def started(self, endpoints: dict[str, str],
                service_map: dict[str, str] | None = None) -> None:
        if self.status is not Status.STARTING:
            raise RecordError(f"run {self.run_id}: started while {self.status}")
        self.status = Status.UP
        self.endpoints = dict(endpoints)
        if service_map is not None:
            self.service_map = dict(service_map)

    def start_failed(self, was_live: bool) -> None:
        """A repair that failed leaves the environment up (what ran still runs); a
        fresh start that failed was rolled back: down."""
        if self.status is not Status.STARTING:
            raise RecordError(f"run {self.run_id}: start failed while {self.status}")
        self.status = Status.UP if was_live else Status.DOWN
        if not was_live:
            self.processes = {}

    def stopped(self) -> None:
        self.status = Status.DOWN
        self.processes = {}


def recorded_profile(state_dir: Path) -> str | None:
    """The profile of the environment recorded in `state_dir`, running or stopped."""
    record = EnvironmentRecord.load(StateDir(state_dir))
    return record.profile if record is not None else None


def running_components(state_dir: Path) -> list[str]:
    """The components of the environment that is up in `state_dir` ([] if none is)."""
    record = EnvironmentRecord.load(StateDir(state_dir))
    return list(record.components) if record is not None and record.is_up else []


def running_profile(state_dir: Path) -> str | None:
    """The profile of the environment that is up in `state_dir`, or None. `harness up`
    without a profile keeps it, and a drill runs on it only when it suits the drill.
    Refuses a foreign or incompatible state directory before anything starts there."""
    record = EnvironmentRecord.load(StateDir(state_dir))
    return record.profile if record is not None and record.is_up else None
