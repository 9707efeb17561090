"""What test authors import — the one public module for writing suites.

- The pytest plugin (`harness.testing.plugin`, registered by the package's pytest11 entry
  point): options `--harness-*`, markers `scenario`, `portable`, `needs(...)`, and the
  fixtures `platform`, `kube`, `namespace`, `vault`, `eso`, `cluster_secret_store`,
  `vault_store`, `prometheus`, `alerts`, `faults` and `environment_factory`.
- `EnvironmentFactory` (the `environment_factory` fixture): local environments of a
  suite's own — `with environment_factory.environment(profile="staging") as env: ...`.
- `settings_from_options(config, tmp_path_factory)`: the session's settings.
- `collect_diagnostics(env, kube, namespace)`: what a failed scenario attaches.
- The interfaces the fixtures are typed with: `Environment`, `LocalEnvironment`,
  `KubeClient`, `ExternalSecretsClient`, `Applications`, `Workspace`, `eventually`,
  `consistently`, `Hopeless`.

Imports are lazy, so loading the plugin stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "EnvironmentFactory": "harness.testing.factory",
    "settings_from_options": "harness.testing.factory",
    "collect_diagnostics": ("harness.testing.diagnostics", "collect"),
    "Environment": "harness.backends.base",
    "LocalEnvironment": "harness.backends.local.environment",
    "KubeClient": "harness.clients.kube",
    "ExternalSecretsClient": "harness.clients.eso",
    "make_test_store": "harness.clients.eso",
    "set_store_access": "harness.clients.eso",
    "Applications": "harness.clients.argocd",
    "Workspace": "harness.clients.git",
    "ReceivedAlerts": "harness.clients.alerts",
    "external_secret_not_ready_rule": "harness.clients.alerts",
    "eventually": "harness.wait",
    "consistently": "harness.wait",
    "Hopeless": "harness.wait",
    "WaitTimeout": "harness.wait",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    target = _PUBLIC.get(name)
    if target is None:
        raise AttributeError(f"module 'harness.testing' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    return getattr(import_module(module), attr)
