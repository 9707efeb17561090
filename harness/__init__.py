"""heracles-harness: a GitOps secrets platform (Kubernetes, OpenBao/Vault, ESO, Argo CD,
Prometheus, Alertmanager) from real binaries on 127.0.0.1, for tests and DR drills.

The public surface is small: `Environment` (the interface every backend implements),
`LocalEnvironment` (the local backend), `Settings`, `eventually` / `consistently` /
`Hopeless` / `WaitTimeout`; suites import the rest from `harness.testing`. Everything
else is internal. Imports are lazy so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "Environment": "harness.backends.base",
    "LocalEnvironment": "harness.backends.local.environment",
    "Settings": "harness.settings",
    "eventually": "harness.wait",
    "consistently": "harness.wait",
    "Hopeless": "harness.wait",
    "WaitTimeout": "harness.wait",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
