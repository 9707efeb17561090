"""Which components the local backend runs, in start order, per profile."""

from __future__ import annotations

from harness.backends.local.components.argocd import ArgoCD
from harness.backends.local.components.backup import Backup
from harness.backends.local.components.base import Component
from harness.backends.local.components.database import Database
from harness.backends.local.components.eso import ExternalSecretsOperator
from harness.backends.local.components.etcd import Etcd
from harness.backends.local.components.git import GitServer
from harness.backends.local.components.kube import Kube
from harness.backends.local.components.node import Node
from harness.backends.local.components.objectstore import ObjectStore
from harness.backends.local.components.observability import Alertmanager, Prometheus
from harness.backends.local.components.toxiproxy import Toxiproxy
from harness.backends.local.components.vault import Vault
from harness.errors import HarnessError

COMPONENTS: dict[str, type[Component]] = {
    "etcd": Etcd, "kube": Kube, "node": Node, "vault": Vault, "eso": ExternalSecretsOperator,
    "alertmanager": Alertmanager, "prometheus": Prometheus, "netfault": Toxiproxy,
    "git": GitServer, "argocd": ArgoCD, "backup": Backup, "s3": ObjectStore, "db": Database}
"""Every component the local backend can run, in start order."""

_ALL = ("etcd", "kube", "vault", "eso", "alertmanager", "prometheus", "netfault", "git",
        "argocd")
PROFILE_COMPONENTS: dict[str, tuple[str, ...]] = {
    "dev": _ALL,
    "staging": _ALL,
    # The database and its backup stores: in prod; staging takes them on request
    # (`--components` with db).
    "prod": (*_ALL, "backup", "s3", "db"),
}


def resolve_components(names: tuple[str, ...] | list[str]) -> list[str]:
    """Add dependencies and order by start order; unknown names are an error."""
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise HarnessError(f"unknown component(s): {', '.join(unknown)}; "
                           f"known: {', '.join(COMPONENTS)}")
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in COMPONENTS[name].requires:
                add(dep)

    for n in names:
        add(n)
    return [n for n in COMPONENTS if n in wanted]
