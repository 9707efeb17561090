"""What test authors import — the one public module for writing suites.

- The pytest plugin (`harness.testing.plugin`, registered by the package's pytest11 entry
  point): options `--harness-*`, markers `scenario`, `portable`, `needs(...)`, and the
  fixtures `platform`, `kube`, `namespace`, `vault`, `eso`, `cluster_secret_store`,
  `vault_store`, `prometheus`, `alerts`, `faults` and `environment_factory`, each also
  as `heracles_<name>` (`heracles_env` for `platform`), and `heracles_settings`.
- `EnvironmentFactory` (the `environment_factory` fixture): local environments of a
  suite's own — `with environment_factory.environment(profile="staging") as env: ...`.
- `settings_from_options(config, tmp_path_factory)`: the session's settings.
- `collect_diagnostics(env, kube, namespace)`: what a failed scenario attaches.
- The interfaces the fixtures are typed with: `Environment`, `LocalEnvironment`,
  `KubeClient`, `VaultAdmin`, `ExternalSecretsClient`, `PrometheusAPI`,
  `ReceivedAlerts`, `Faults`, `Settings`, `Applications`, `Workspace`, `eventually`,
  `consistently`, `Hopeless`.

Imports are lazy, so loading the plugin stays cheap.
"""

from __future__ import annotations

from harness.lazy import lazy_exports

_PUBLIC: dict[str, str | tuple[str, str]] = {
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
    "VaultAdmin": "harness.clients.vault",
    "PrometheusAPI": "harness.clients.prometheus",
    "Faults": "harness.backends.base",
    "Settings": "harness.settings",
    "external_secret_not_ready_rule": "harness.clients.alerts",
    **dict.fromkeys(("eventually", "consistently", "Hopeless", "WaitTimeout"), "harness.wait"),
}

__all__ = sorted(_PUBLIC)

__getattr__ = lazy_exports(__name__, _PUBLIC)
