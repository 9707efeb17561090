"""DR drills: `harness drill list` / `harness drill run NAME`. A drill is a sequence of
time-stamped steps (fault, checks, recovery actions); it measures RTO (fault -> service
restored as a client sees it) and RPO (data lost), gives a verdict, and writes report.md,
report.json, report.html and timeline.png.

Every drill runs on the local backend (processes); the Vault and ESO drills run on the
pods backend too (the platform's charts as real Pods: pods.py), as Kubernetes
operations, with the same checks and reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.drills.catalog import BACKENDS, DRILLS, Drill, on_backend
from harness.drills.model import DrillResult, DrillRun, Event
from harness.drills.report import write_reports
from harness.errors import HarnessError
from harness.runtime.redact import redact

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.backends.pods.environment import PodsEnvironment

__all__ = ["BACKENDS", "DRILLS", "Drill", "DrillResult", "get", "on_backend", "run_drill"]


def get(name: str, backend: str = "local") -> Drill:
    """The drill as it runs on `backend`; unknown drills, unknown backends and drills
    without a version for the backend are refused, naming what there is."""
    if name not in DRILLS:
        raise HarnessError(f"unknown drill {name!r}; known: {', '.join(DRILLS)}")
    if backend not in BACKENDS:
        raise HarnessError(f"unknown backend {backend!r} for drills; known: "
                           f"{', '.join(BACKENDS)}")
    return DRILLS[name].on(backend)


def run_drill(name: str, platform: LocalEnvironment | PodsEnvironment,
              report_dir: Path | None = None,
              progress: Callable[[Event], None] = lambda _e: None) -> DrillResult:
    """Run one drill against a running environment (its backend's version of the drill);
    write the reports if asked. An exception inside the drill ends it with verdict FAIL
    (and is in the report)."""
    drill = get(name, platform.backend)
    profile = platform.settings.profile
    if profile not in drill.profiles:
        raise HarnessError(f"drill {name!r} needs profile {' or '.join(drill.profiles)}; "
                           f"this environment runs {profile!r}")
    result = DrillResult(drill=name, description=drill.description, profile=profile,
                         started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         objectives=drill.objectives)
    run = DrillRun(result, progress)
    try:
        drill.run(platform, run)
    except Exception as exc:  # noqa: BLE001 - the report says what went wrong
        run.error(redact(f"{type(exc).__name__}: {exc}"))
    result.duration = run.now()
    if report_dir is not None:
        write_reports(result, report_dir)
    return result
