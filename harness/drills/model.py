"""What a drill records: a timeline of time-stamped steps (fault, checks, recovery),
the two instants RTO is measured between (fault injected -> service restored as a
client sees it), the data lost (RPO), objectives, and the verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.runtime.redact import redact

KINDS = ("setup", "fault", "check", "recovery", "restored", "info", "error")


@dataclass
class Event:
    at: float  # seconds since the drill started
    kind: str
    message: str
    ok: bool | None = None


@dataclass
class Objectives:
    rto_seconds: float
    rpo_writes: int = 0  # data loss tolerated (writes/objects), beyond what is expected
    note: str = ""

    def overridden(self, rto_seconds: float | None = None, rpo_writes: int | None = None,
                   source: str = "") -> Objectives:
        """These objectives with the figures given (None: kept), `source` noting where
        they came from (`--rto`, the existing backend's config)."""
        if rto_seconds is None and rpo_writes is None:
            return self
        return Objectives(
            rto_seconds=float(rto_seconds if rto_seconds is not None else self.rto_seconds),
            rpo_writes=int(rpo_writes if rpo_writes is not None else self.rpo_writes),
            note="; ".join(n for n in (self.note, f"set by {source}" if source else "") if n))


@dataclass
class DrillResult:
    drill: str
    description: str
    profile: str
    started_utc: str
    objectives: Objectives
    events: list[Event] = field(default_factory=list)
    fault_at: float | None = None
    restored_at: float | None = None
    rpo: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0
    backend: str = "local"  # where it ran: local, pods, existing

    @property
    def rto_seconds(self) -> float | None:
        if self.fault_at is None or self.restored_at is None:
            return None
        return round(self.restored_at - self.fault_at, 3)

    @property
    def failed_checks(self) -> list[Event]:
        return [e for e in self.events if e.kind == "check" and e.ok is False]

    @property
    def reasons(self) -> list[str]:
        """Why the verdict is FAIL (empty when it passes)."""
        out = [f"check failed: {e.message}" for e in self.failed_checks]
        if self.error:
            out.append(f"drill aborted: {self.error}")
        rto = self.rto_seconds
        if rto is None:
            out.append("service was not restored (no RTO)")
        elif rto > self.objectives.rto_seconds:
            out.append(f"RTO {rto:.1f}s exceeds the objective "
                       f"{self.objectives.rto_seconds:.0f}s")
        unexpected = int(self.rpo.get("unexpected_loss", 0))
        if unexpected > self.objectives.rpo_writes:
            out.append(f"{unexpected} write(s)/object(s) lost beyond what the backup "
                       "could hold")
        return out

    @property
    def verdict(self) -> str:
        return "PASS" if not self.reasons else "FAIL"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(rto_seconds=self.rto_seconds, verdict=self.verdict,
                    reasons=self.reasons)
        return data


def backup_dir(platform: Any) -> Path:
    """Where the local drills keep the snapshots they take: the environment's state dir."""
    path: Path = platform.state.root / "backups" / "drills"
    path.mkdir(parents=True, exist_ok=True)
    return path


class DrillRun:
    """Handed to a drill's steps: time-stamps everything, reports progress."""

    def __init__(self, result: DrillResult,
                 progress: Callable[[Event], None] = lambda _e: None) -> None:
        self.result = result
        self.progress = progress
        self._t0 = time.monotonic()

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 3)

    def _add(self, kind: str, message: str, ok: bool | None = None) -> Event:
        event = Event(self.now(), kind, redact(message), ok)
        self.result.events.append(event)
        self.progress(event)
        return event

    def setup(self, message: str) -> None:
        self._add("setup", message)

    def info(self, message: str) -> None:
        self._add("info", message)

    def recovery(self, message: str) -> None:
        self._add("recovery", message)

    def fault(self, message: str) -> None:
        self.result.fault_at = self._add("fault", message).at

    def restored(self, message: str) -> None:
        if self.result.restored_at is None:
            self.result.restored_at = self._add("restored", message).at

    def check(self, message: str, ok: bool) -> bool:
        self._add("check", message, bool(ok))
        return bool(ok)

    def measure(self, name: str, seconds: float) -> None:
        self.result.measurements[name] = round(seconds, 3)

    def error(self, message: str) -> None:
        self.result.error = redact(message)
        self._add("error", message, False)
