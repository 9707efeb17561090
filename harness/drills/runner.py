"""A drill end to end, as `harness drill run` does it: decide where it runs, bring that
environment up if it is the drill's own, run the drill, write the reports, tear down.

A drill reuses the running environment of the state directory when that environment's
profile suits the drill (and is the one asked for): attaching takes seconds, a staging
start minutes. Otherwise it starts a fresh environment next to it, in
`<state-dir>/../drills/<name>`, so the user's environment is never touched, and
removes it afterwards unless asked to keep it.

Both backends plan the same way: `--backend local` (processes) looks for the local
environment of the state directory, `--backend pods` (the charts as real Pods) for a
pods environment recorded running there (`harness up --backend pods`); a drill on pods
starts its own in staging unless told otherwise.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.drills import get, run_drill
from harness.drills.model import DrillResult, Event
from harness.errors import HarnessError
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.backends.pods.environment import PodsEnvironment

Events = Callable[[str], None]
Progress = Callable[[Event], None]


def _quiet(_message: str) -> None:
    """Default sink for environment messages."""


def _quiet_event(_event: Event) -> None:
    """Default sink for drill events."""


@dataclass(frozen=True)
class DrillPlan:
    """Where a drill runs and where its reports go, decided before anything starts."""

    name: str
    settings: Settings  # of the environment the drill runs on
    reuse: bool  # True: the running environment of the state dir; False: its own
    report_dir: Path
    backend: str = "local"


@dataclass(frozen=True)
class DrillOutcome:
    """The drill's result and where it ran and reported."""

    result: DrillResult
    plan: DrillPlan


def default_report_dir(name: str) -> Path:
    """./drill-reports/NAME-<UTC time>: one directory per run, never overwritten."""
    return Path("drill-reports") / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def pods_running_profile(settings: Settings) -> str | None:
    """The profile of the pods environment recorded running in `settings.state_dir`
    (`harness up --backend pods`), or None."""
    from harness.backends.pods.environment import PodsEnvironment

    try:
        env = PodsEnvironment.from_record(settings)
        if not env.running():
            return None
        profile = env.load_record().get("profile")
    except HarnessError:
        return None
    return str(profile) if profile else None


def default_profile(name: str, backend: str = "local") -> str:
    """The profile of the environment a drill starts for itself: its first; on pods
    staging when the drill runs there (the production shape: 3 raft Pods, TLS)."""
    spec = get(name, backend)
    if backend == "pods" and "staging" in spec.profiles:
        return "staging"
    return spec.profiles[0]


def plan_drill(name: str, settings: Settings, profile: str | None = None,
               report_dir: Path | None = None, backend: str = "local") -> DrillPlan:
    """Decide reuse (running environment of `settings.state_dir` on `backend` whose
    profile suits the drill and equals `profile` when given) or a fresh environment of
    `profile` (default: `default_profile`). Unknown drills, drills without a version for
    the backend and unsuitable profiles are refused here, before anything starts."""
    spec = get(name, backend)
    if profile is not None and profile not in spec.profiles:
        raise HarnessError(f"drill {name!r} needs profile {' or '.join(spec.profiles)}")
    if backend == "pods":
        running = pods_running_profile(settings)
    else:
        from harness.backends.local.record import running_profile

        running = running_profile(settings.state_dir)
    reuse = running is not None and running in spec.profiles and (
        profile is None or running == profile)
    if reuse:
        settings = settings.with_(profile=running)  # attaching adopts it anyway
    else:
        settings = settings.with_(profile=profile or default_profile(name, backend),
                                  state_dir=settings.state_dir.parent / "drills" / name)
    return DrillPlan(name=name, settings=settings, reuse=reuse,
                     report_dir=report_dir or default_report_dir(name), backend=backend)


def run_drill_session(name: str, settings: Settings, *, profile: str | None = None,
                      report_dir: Path | None = None, keep: bool = False,
                      backend: str = "local", announce: Events = _quiet,
                      events: Events = _quiet,
                      progress: Progress = _quiet_event) -> DrillOutcome:
    """Plan the drill (see `plan_drill`), attach to or start its environment on
    `backend`, run it and write report.md/json/html + timeline.png into the plan's
    report dir. An environment the drill started is purged afterwards unless `keep`; a
    reused one is left running.

    `announce` gets one line saying where the drill runs, `events` the environment's
    start-up messages, `progress` each drill event as it happens."""
    from harness.backends.local.environment import LocalEnvironment

    plan = plan_drill(name, settings, profile, report_dir, backend)
    if backend == "pods":
        return _pods_session(plan, keep, announce, events, progress)
    platform = LocalEnvironment(plan.settings)
    if plan.reuse:
        platform.attach()
        announce(f"drill {name}: on the running {platform.settings.profile} environment "
                 f"in {plan.settings.state_dir}")
    else:
        announce(f"drill {name}: starting a {plan.settings.profile} environment in "
                 f"{plan.settings.state_dir}")
        platform.up(events=events)
    try:
        result = run_drill(name, platform, plan.report_dir, progress=progress)
    finally:
        if not plan.reuse and not keep:
            platform.down(purge=True)
    return DrillOutcome(result=result, plan=plan)


def _pods_session(plan: DrillPlan, keep: bool, announce: Events, events: Events,
                  progress: Progress) -> DrillOutcome:
    """The pods backend's session: attach to the recorded running environment, or start
    one (detached, as `harness up --backend pods` does, so `--keep` leaves one that
    `harness down --backend pods` removes) in the drill's own state dir — attaching
    instead when an earlier `--keep` left it running there."""
    from harness.backends.install.session import start_detached
    from harness.backends.pods.environment import PodsEnvironment

    name, settings = plan.name, plan.settings
    where = f"{settings.profile} pods environment in {settings.state_dir}"
    platform: PodsEnvironment
    if plan.reuse or pods_running_profile(settings) == settings.profile:
        found = PodsEnvironment.from_record(settings)
        assert isinstance(found, PodsEnvironment)
        platform = found
        platform.attach()
        announce(f"drill {name}: on the running {where}")
    else:
        announce(f"drill {name}: starting a {where}")
        platform = PodsEnvironment(settings)
        start_detached(platform, progress=events)
    try:
        result = run_drill(name, platform, plan.report_dir, progress=progress)
    finally:
        if not plan.reuse and not keep:
            platform.down()
            shutil.rmtree(settings.state_dir, ignore_errors=True)
    return DrillOutcome(result=result, plan=plan)
