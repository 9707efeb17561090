"""GitOps content into a running environment, as `harness apply` and `harness gitops
bootstrap` do it: plain manifests applied (validated, service-mapped), the Applications
of a platform repository awaited, an environment's app-of-apps bootstrapped.

These are the steps around the library calls (which client, which file, how the
remaining time is shared between waits); the commands only parse options and print.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.backends.base import Environment

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    """Default log sink."""


def apply_manifests(platform: Environment, paths: list[Path], log: Log = _quiet) -> int:
    """Validate every document, rewrite in-cluster addresses through the service map,
    server-side apply, and let the environment react (e.g. reload Prometheus rules).
    Returns how many objects were applied."""
    from kubernetes.dynamic import DynamicClient

    from harness.clients import manifests

    dyn = DynamicClient(platform.kube_client().api_client)
    docs = manifests.apply_paths(paths, dyn, platform.service_map(), log=log)
    platform.after_apply(docs)
    return len(docs)


def wait_synced(platform: Environment, apps: dict[str, Any], timeout: float,
                log: Log = _quiet) -> list[str]:
    """Wait for every expected Application of an `apply_repo` report to be Synced (health
    not required: payload may legitimately be degraded). Returns "name: why" for each
    that is not — including those the harness could not serve — empty when all are."""
    from harness.clients.argocd import Applications

    argo = Applications(platform.kube_client())
    failed = []
    for name in apps["expected"]:
        if name in apps.get("unservable", {}):
            failed.append(f"{name}: {apps['unservable'][name]}")
            continue
        try:
            st = argo.wait(name, sync="Synced", health=None, timeout=timeout)
            log(f"Application {name}: {st['sync']} / {st['health']}")
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
    return failed


@dataclass
class Bootstrapped:
    """An app-of-apps applied and every Application Synced and Healthy."""

    app_of_apps: Path
    seconds: float  # from the apply to the last Application healthy
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> state


def app_of_apps_path(platform: Environment, env: str | None = None) -> Path:
    """fixtures/gitops/argocd/<env>/app-of-apps.yaml; env defaults to the profile, so
    each environment follows its own branch."""
    env = env or platform.settings.profile
    return Path(platform.settings.fixtures_dir) / "gitops" / "argocd" / env / "app-of-apps.yaml"


def bootstrap(platform: Environment, env: str | None = None, timeout: float = 180.0,
              log: Log = _quiet) -> Bootstrapped:
    """Apply the environment's app-of-apps, wait for the root Application `platform`,
    then for every Application it created, all within `timeout` seconds in total.
    Raises WaitTimeout naming what is not Synced/Healthy (with its errors)."""
    from harness.clients.argocd import Applications
    from harness.clients.eso import ExternalSecretsClient

    path = app_of_apps_path(platform, env)
    kube = platform.kube_client()
    ExternalSecretsClient(platform, kube).apply(path)
    log(f"applied {path}")
    apps = Applications(kube)
    t0 = time.monotonic()
    apps.wait("platform", timeout=timeout)
    names = [n for n in apps.names() if n != "platform"]
    apps.wait_all(names, timeout=max(1.0, timeout - (time.monotonic() - t0)))
    states = {name: apps.state(name) for name in apps.names()}
    return Bootstrapped(app_of_apps=path, seconds=time.monotonic() - t0, applications=states)
