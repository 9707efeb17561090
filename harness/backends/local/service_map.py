"""In-cluster address -> local address: how manifests written for a cluster reach the
local processes. Each component declares the Services it plays (`service_aliases()`);
later components override earlier ones, so Toxiproxy, started after Vault, puts itself
between ESO and Vault when it runs."""

from __future__ import annotations

from collections.abc import Iterable

from harness.backends.local.components.base import Component


def service_map(components: Iterable[Component]) -> dict[str, str]:
    """The rewrite table `harness apply`, ESO fixtures and the Git seed use."""
    out: dict[str, str] = {}
    for comp in components:
        out.update(comp.service_aliases())
    return out
