"""heracles-harness: a GitOps secrets platform (Kubernetes, OpenBao/Vault, ESO, Argo CD,
Prometheus, Alertmanager) from real binaries on 127.0.0.1, for tests and DR drills.

The public surface is small: `Environment` (the interface every backend implements),
`LocalEnvironment` (the local backend), `Settings`, `eventually` / `consistently` /
`Hopeless` / `WaitTimeout`; suites import the rest from `harness.testing`. Everything
else is internal. Imports are lazy so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

from harness.lazy import lazy_exports

_PUBLIC: dict[str, str | tuple[str, str]] = {
    "Environment": "harness.backends.base",
    "LocalEnvironment": "harness.backends.local.environment",
    "Settings": "harness.settings",
    **dict.fromkeys(("eventually", "consistently", "Hopeless", "WaitTimeout"), "harness.wait"),
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_exports(__name__, _PUBLIC)
