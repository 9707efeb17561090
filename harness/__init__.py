"""heracles-harness: a GitOps secrets platform (Kubernetes, OpenBao/Vault, ESO, Argo CD,
Prometheus, Alertmanager) from real binaries on 127.0.0.1, for tests and DR drills.

The public surface is small: `Platform`, `Settings`, `eventually`, `Hopeless`, and the
pytest fixtures (`platform`, `kube`, `namespace`). Everything else is internal. Imports
are lazy so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Hopeless", "Platform", "Settings", "WaitTimeout", "consistently", "eventually"]


def __getattr__(name: str) -> Any:
    if name == "Platform":
        from harness.platform import Platform

        return Platform
    if name == "Settings":
        from harness.settings import Settings

        return Settings
    if name in ("eventually", "consistently", "Hopeless", "WaitTimeout"):
        from harness import wait

        return getattr(wait, name)
    raise AttributeError(name)
