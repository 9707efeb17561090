"""DR drills: `harness drill list` / `harness drill run NAME`. A drill is a sequence of
time-stamped steps (fault, checks, recovery actions); it measures RTO (fault -> service
restored as a client sees it) and RPO (data lost), gives a verdict, and writes report.md,
report.json, report.html and timeline.png.

Every drill runs on the local backend (processes); the Vault and ESO drills run on the
pods backend too (the platform's charts as real Pods: pods.py), as Kubernetes
operations, with the same checks and reports. On the existing backend (anyone's
cluster, through its endpoints file) run the drills whose capabilities its config gives:
vault-snapshot-restore always (Vault's API and the Kubernetes API: existing.py), the
Vault and ESO fault drills when the config names `faults:` (pod-faults); the others are
refused naming what they need and what the backend lacks (catalog.refusal)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.drills.catalog import BACKENDS, DRILLS, Drill, on_backend, refusal
from harness.drills.model import DrillResult, DrillRun, Event, Objectives
from harness.drills.report import write_reports
from harness.errors import HarnessError
from harness.runtime.redact import redact

__all__ = ["BACKENDS", "DRILLS", "Drill", "DrillResult", "get", "on_backend", "refusal",
           "run_drill"]

CONFIRM_FLAG = "--yes-restore-vault"


def get(name: str, backend: str = "local") -> Drill:
    """The drill as it runs on `backend`; unknown drills, unknown backends and drills
    without a version for the backend are refused, naming what there is."""
    if name not in DRILLS:
        raise HarnessError(f"unknown drill {name!r}; known: {', '.join(DRILLS)}")
    if backend not in BACKENDS:
        raise HarnessError(f"unknown backend {backend!r} for drills; known: "
                           f"{', '.join(BACKENDS)}")
    return DRILLS[name].on(backend)


def run_drill(name: str, platform: Any, report_dir: Path | None = None,
              progress: Callable[[Event], None] = lambda _e: None,
              objectives: Objectives | None = None,
              confirmed: bool = False) -> DrillResult:
    """Run one drill against a running environment (its backend's version of the drill);
    write the reports if asked. An exception inside the drill ends it with verdict FAIL
    (and is in the report). `objectives` replace the drill's own (`--rto`, the existing
    backend's config).

    Refused before anything is done: a profile the drill does not suit (local, pods),
    capabilities the backend lacks, and on the existing backend a drill whose
    consequence reaches beyond its own data unless `confirmed` (--yes-restore-vault)."""
    backend: str = platform.backend
    drill = get(name, backend)
    have = getattr(platform, "capabilities", None)
    if isinstance(have, frozenset) and (why := refusal(name, backend, have)):
        raise HarnessError(why)
    if backend == "existing":
        profile = "existing"  # the cluster is what it is: its own shape
        if drill.confirm and not confirmed:
            raise HarnessError(confirm_refusal(name))
    else:
        profile = platform.settings.profile
        if profile not in drill.profiles:
            raise HarnessError(f"drill {name!r} needs profile {' or '.join(drill.profiles)}; "
                               f"this environment runs {profile!r}")
    result = DrillResult(drill=name, description=drill.description, profile=profile,
                         started_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         objectives=objectives or drill.objectives, backend=backend)
    run = DrillRun(result, progress)
    try:
        drill.run(platform, run)
    except Exception as exc:  # noqa: BLE001 - the report says what went wrong
        run.error(redact(f"{type(exc).__name__}: {exc}"))
    result.duration = run.now()
    if report_dir is not None:
        write_reports(result, report_dir)
    return result


def confirm_refusal(name: str) -> str:
    """Why a drill whose consequence reaches beyond its own data waits for the flag."""
    drill = get(name, "existing")
    return (f"drill {name!r} on the existing backend {drill.confirm}. Run it only where "
            f"that is acceptable (a throw-away or staging cluster nobody writes to during "
            f"the drill), with {CONFIRM_FLAG}")
