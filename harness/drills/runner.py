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

`--backend existing --config FILE` runs on the cluster that endpoints file describes
(harness/backends/existing.py): it starts and tears down nothing. Whether the drill can
run there — a version for the backend, the capabilities the config gives, and for a
drill that restores all of Vault the user's `--yes-restore-vault` — is decided from the
file alone, before anything connects.

Objectives: the drill's own, replaced by the existing config's `objectives:` entry for
the drill, replaced by `--rto` (see `objectives_for`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.drills import confirm_refusal, get, refusal, run_drill
from harness.drills.model import DrillResult, Event, Objectives
from harness.errors import HarnessError
from harness.settings import Settings

if TYPE_CHECKING:
    from harness.backends.existing import ExistingConfig
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
    objectives: Objectives | None = None  # None: the drill's own
    existing: ExistingConfig | None = None  # the endpoints file (--backend existing)
    confirmed: bool = False  # --yes-restore-vault


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


def objectives_for(name: str, backend: str, rto: float | None = None,
                   config: ExistingConfig | None = None) -> Objectives:
    """The drill's objectives on `backend`: its own, replaced by the existing config's
    `objectives: {NAME: {rto_seconds, rpo_writes}}`, replaced by `rto` (--rto)."""
    found = get(name, backend).objectives
    if config is not None and name in config.objectives:
        entry = config.objectives[name]
        rpo = entry.get("rpo_writes")
        found = found.overridden(entry.get("rto_seconds"), int(rpo) if rpo is not None
                                 else None, f"objectives.{name} of {config.source}")
    if rto is not None:
        found = found.overridden(rto_seconds=rto, source="--rto")
    return found


def load_existing(config: Path | None) -> ExistingConfig:
    """The existing backend's endpoints file, checked (nothing connects yet)."""
    from harness.backends.existing import ExistingConfig
    from harness.drills import DRILLS

    if config is None:
        raise HarnessError("--backend existing needs --config FILE: the endpoints file of "
                           "the cluster (`harness backend export-config FILE` writes one "
                           "for a running local environment)")
    loaded = ExistingConfig.load(config)
    unknown = sorted(set(loaded.objectives) - set(DRILLS))
    if unknown:
        raise HarnessError(f"{loaded.source}: objectives: unknown drill(s) "
                           f"{', '.join(unknown)}; known: {', '.join(DRILLS)}")
    return loaded


def plan_drill(name: str, settings: Settings, profile: str | None = None,
               report_dir: Path | None = None, backend: str = "local", *,
               config: Path | None = None, rto: float | None = None,
               confirmed: bool = False) -> DrillPlan:
    """Decide reuse (running environment of `settings.state_dir` on `backend` whose
    profile suits the drill and equals `profile` when given) or a fresh environment of
    `profile` (default: `default_profile`). Unknown drills, drills without a version for
    the backend and unsuitable profiles are refused here, before anything starts.

    On the existing backend: the drill runs on the cluster of `config`; refused when
    the config lacks a capability the drill needs, or (a drill restoring all of Vault)
    unless `confirmed`."""
    spec = get(name, backend)
    if backend == "existing":
        cfg = load_existing(config)
        why = refusal(name, backend, cfg.capabilities(), str(cfg.source))
        if why:
            raise HarnessError(why)
        if spec.confirm and not confirmed:
            raise HarnessError(confirm_refusal(name))
        if profile is not None:
            raise HarnessError("--profile does not apply to --backend existing: the drill "
                               "runs on the cluster of --config as it is")
        return DrillPlan(name=name, settings=settings, reuse=True,
                         report_dir=report_dir or default_report_dir(name),
                         backend=backend, objectives=objectives_for(name, backend, rto, cfg),
                         existing=cfg, confirmed=confirmed)
    if config is not None:
        raise HarnessError(f"--config is the existing backend's endpoints file; this "
                           f"drill runs on --backend {backend}")
    if profile is not None and profile not in spec.profiles:
        raise HarnessError(f"drill {name!r} needs profile {' or '.join(spec.profiles)}")
    if backend == "pods":
        running = pods_running_profile(settings)
    else:
        from harness.backends.local.record import running_components, running_profile

        running = running_profile(settings.state_dir)
        if running is not None and not set(spec.components) <= set(
                running_components(settings.state_dir)):
            running = None  # it lacks a component the drill needs: not reused
    reuse = running is not None and running in spec.profiles and (
        profile is None or running == profile)
    if reuse:
        settings = settings.with_(profile=running)  # attaching adopts it anyway
    else:
        fresh = profile or default_profile(name, backend)
        settings = settings.with_(profile=fresh,
                                  state_dir=settings.state_dir.parent / "drills" / name)
        if spec.components and backend == "local":
            from harness.backends.local.profiles import PROFILE_COMPONENTS

            own = settings.components or PROFILE_COMPONENTS[fresh]
            settings = settings.with_(components=tuple(
                dict.fromkeys([*own, *spec.components])))
    return DrillPlan(name=name, settings=settings, reuse=reuse,
                     report_dir=report_dir or default_report_dir(name), backend=backend,
                     objectives=objectives_for(name, backend, rto), confirmed=confirmed)


def run_drill_session(name: str, settings: Settings, *, profile: str | None = None,
                      report_dir: Path | None = None, keep: bool = False,
                      backend: str = "local", announce: Events = _quiet,
                      events: Events = _quiet,
                      progress: Progress = _quiet_event, config: Path | None = None,
                      rto: float | None = None, confirmed: bool = False,
                      plan: DrillPlan | None = None) -> DrillOutcome:
    """Plan the drill (see `plan_drill`), attach to or start its environment on
    `backend`, run it and write report.md/json/html + timeline.png into the plan's
    report dir. An environment the drill started is purged afterwards unless `keep`; a
    reused one is left running.

    `announce` gets one line saying where the drill runs, `events` the environment's
    start-up messages, `progress` each drill event as it happens. `plan`: one made
    already (by `plan_drill`, with these arguments)."""
    from harness.backends.local.environment import LocalEnvironment

    plan = plan or plan_drill(name, settings, profile, report_dir, backend, config=config,
                              rto=rto, confirmed=confirmed)
    if plan.backend == "existing":
        return _existing_session(plan, announce, progress)
    if plan.backend == "pods":
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
        result = run_drill(name, platform, plan.report_dir, progress=progress,
                           objectives=plan.objectives)
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
        result = run_drill(name, platform, plan.report_dir, progress=progress,
                           objectives=plan.objectives)
    finally:
        if not plan.reuse and not keep:
            platform.down()
            shutil.rmtree(settings.state_dir, ignore_errors=True)
    return DrillOutcome(result=result, plan=plan)


def _existing_session(plan: DrillPlan, announce: Events, progress: Progress) -> DrillOutcome:
    """The existing backend's session: connect to the cluster of the config (its checks:
    apiserver, ESO's CRDs, Vault unsealed, the token valid) and run the drill there.
    Nothing is started, nothing torn down."""
    from harness.backends.existing import ExistingEnvironment

    cfg = plan.existing
    assert cfg is not None
    announce(f"drill {plan.name}: on the existing cluster of {cfg.source} (Vault at "
             f"{cfg.vault_address}); nothing is started or torn down")
    platform = ExistingEnvironment(cfg, plan.settings).up()
    result = run_drill(plan.name, platform, plan.report_dir, progress=progress,
                       objectives=plan.objectives, confirmed=plan.confirmed)
    return DrillOutcome(result=result, plan=plan)


def report_paths(directory: Path) -> dict[str, Path]:
    """The reports a drill wrote into `directory` (timeline.png only when drawn)."""
    names = (("json", "report.json"), ("md", "report.md"), ("html", "report.html"),
             ("png", "timeline.png"))
    return {k: directory / n for k, n in names if (directory / n).is_file()}


def backend_capabilities(backend: str | None, config: Path | None = None
                         ) -> tuple[frozenset[str] | None, ExistingConfig | None]:
    """What `backend` can do, as the drills' needs are judged against it: the local and
    pods backends' own, the existing backend's from its config (read, not connected)."""
    if backend is None:
        return None, None
    if backend == "existing":
        cfg = load_existing(config)
        return cfg.capabilities(), cfg
    if backend == "pods":
        from harness.backends.pods.environment import PODS_CAPABILITIES

        return PODS_CAPABILITIES, None
    from harness.backends.base import LOCAL_CAPABILITIES

    return LOCAL_CAPABILITIES, None


def drill_catalog(backend: str | None = None, have: frozenset[str] | None = None,
                  config: ExistingConfig | None = None) -> list[dict[str, Any]]:
    """Every drill, JSON-ready: its profiles, and per backend it has a version for its
    description, the capabilities it needs, its objectives (on existing with the
    config's `objectives:`) and whether --yes-restore-vault is asked for; given a
    `backend` and its capabilities `have`, whether it runs there and why not."""
    from harness.drills import DRILLS

    out = []
    for d in DRILLS.values():
        versions = {}
        for b in d.backends:
            spec = d.on(b)
            objectives = objectives_for(d.name, b, config=config if b == "existing" else None)
            versions[b] = {"description": spec.description,
                           "needs": sorted(d.needs_on(b) or ()),
                           "rto_seconds": objectives.rto_seconds,
                           "rpo_writes": objectives.rpo_writes,
                           "confirm": spec.confirm}
        entry: dict[str, Any] = {"name": d.name, "description": d.description,
                                 "profiles": list(d.profiles), "backends": versions}
        if backend is not None and have is not None:
            why = refusal(d.name, backend, have)
            entry.update(runnable=why is None, reason=why)
        out.append(entry)
    return out
