"""A kind cluster that outlives the command that created it (`harness backend kind-up`):
all or nothing while it starts, then detached, with an existing-backend config the
suites run through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.backends.existing import write_config
from harness.backends.install.environment import KindUnavailable
from harness.backends.kind.environment import KindEnvironment
from harness.errors import HarnessError
from harness.settings import Settings


def _quiet(_message: str) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class KindStarted:
    """The cluster's name and the existing-backend config that reaches it."""

    name: str
    config: Path


def start_detached(settings: Settings,
                   progress: Callable[[str], None] = _quiet) -> KindStarted:
    """Create the kind cluster and install the platform. On any failure nothing is left
    half-done (port-forwards stopped, cluster deleted); when Docker or an image is
    missing the HarnessError says exactly why. On success the run is detached (its
    port-forwards keep running until `kind-down`) and `<state>/kind/existing.yaml`
    is written."""
    kind = KindEnvironment(settings)
    try:
        kind.up(progress=progress)
    except KindUnavailable as exc:
        raise HarnessError(f"the kind backend cannot run on this machine: {exc}") from None
    except BaseException:
        kind.down()
        raise
    kind.registry.set_mode(kind.run_id, "detached")
    path = write_config(kind.config, kind.dir / "existing.yaml")
    return KindStarted(name=kind.name, config=path)
