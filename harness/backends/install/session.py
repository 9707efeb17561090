"""A chart-installed environment that outlives the command that created it (`harness up
--backend pods`, `harness backend kind-up`): all or nothing while it starts, then
detached, with an existing-backend config the suites (and `--harness-backend existing`)
run through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.backends.existing import write_config
from harness.backends.install.environment import ChartsEnvironment, KindUnavailable
from harness.errors import HarnessError
from harness.runtime.signals import interrupts_deferred


def _quiet(_message: str) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class Started:
    """The environment and the existing-backend config that reaches it."""

    env: ChartsEnvironment
    config: Path


def start_detached(env: ChartsEnvironment,
                   progress: Callable[[str], None] = _quiet) -> Started:
    """Bring the environment up and install the platform. On any failure nothing is left
    half-done (forwards stopped, cluster removed); when the machine cannot run it the
    HarnessError says exactly why. On success the run is detached (its forwards and
    receiver keep running until `down`) and `<state>/<backend>/existing.yaml` is
    written."""
    try:
        env.up(progress=progress)
    except KindUnavailable as exc:
        env.down()
        raise HarnessError(f"the {env.backend} backend cannot run on this machine: "
                           f"{exc}") from None
    except BaseException:
        with interrupts_deferred():  # a second Ctrl-C must not cut the teardown short
            env.down()
        raise
    env.detach()
    path = write_config(env.config, env.dir / "existing.yaml")
    return Started(env=env, config=path)
