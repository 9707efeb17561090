"""Faults as Kubernetes operations, for clusters where Vault and ESO are pods (kind, an
existing cluster, pods): delete a Vault pod (its StatefulSet brings it back), scale the
ESO Deployment, cordon a node. Which pods and Deployment is the backend's config (`faults:`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.clients.kube import KubeClient


class KubeFaults:
    """Faults as Kubernetes operations, for clusters where Vault and ESO are pods: delete
    a Vault pod (its StatefulSet brings it back), scale the ESO Deployment. Everything is
    undone at teardown (replicas restored)."""

    def __init__(self, kube: KubeClient, faults: dict[str, dict[str, str]],
                 unseal: Callable[[str], object] | None = None) -> None:
        self.kube = kube
        self.faults = faults
        # How a replaced Vault pod is unsealed, when the backend holds the keys (the
        # runbook's `kubectl exec ... vault operator unseal`); None: someone else does.
        self.unseal = unseal
        self._replicas: dict[tuple[str, str], int] = {}
        self._cordoned: set[str] = set()
        # The Vault pods' uids when each delete was made, by the deleted pod's uid: a
        # replacement is a pod none of them was.
        self._uids_before: dict[str, set[str]] = {}

    def vault_pods(self) -> list[Any]:
        sel = self.faults["vault_pods"]
        pods = self.kube.core.list_namespaced_pod(sel["namespace"],
                                                  label_selector=sel["selector"]).items
        return sorted(pods, key=lambda p: p.metadata.name)

    def delete_vault_pod(self, name: str | None = None, grace_seconds: int = 0) -> str:
        """Delete one Vault pod (the first, or `name`): a node crash, as the cluster sees
        it. Returns the deleted pod's uid."""
        pods = self.vault_pods()
        if not pods:
            raise HarnessError(f"no Vault pod matches {self.faults['vault_pods']}")
        pod = next((p for p in pods if p.metadata.name == name), pods[0]) if name else pods[0]
        self._uids_before[str(pod.metadata.uid)] = {str(p.metadata.uid) for p in pods}
        self.kube.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                             grace_period_seconds=grace_seconds)
        return str(pod.metadata.uid)

    def wait_vault_pod_replaced(self, name: str, old_uid: str, timeout: float = 120) -> str:
        """The controller's new Pod Running — the same name from a StatefulSet, another
        from a Deployment — unsealed (when the backend holds the keys) and Ready, and an
        active node elected: the cluster whole again. Returns the new Pod's name."""
        ns = self.faults["vault_pods"]["namespace"]
        before = self._uids_before.get(old_uid, {old_uid})

        def replacement() -> str | None:
            # Only a pod that was not there at the delete: the surviving pods are Running
            # too (this once took a survivor for the replacement, and a StatefulSet's new
            # vault-0 stayed sealed; the chart's Service, which publishes not-ready
            # addresses, sent ESO a 503 a third of the time — seen in CI).
            new = [p for p in self.vault_pods() if str(p.metadata.uid) not in before
                   and p.metadata.deletion_timestamp is None]
            same = [p for p in new if p.metadata.name == name]
            return next((str(p.metadata.name) for p in same or new
                         if p.status.phase == "Running"), None)

        new: str = eventually(replacement, timeout=timeout,
                              description=f"a Vault pod in {ns} replaces {name}")
        if self.unseal is not None:
            unseal = self.unseal
            eventually(lambda: unseal(new) or True, timeout=timeout,
                       retry_on=(HarnessError,),
                       description=f"the replaced {new} unsealed, as the runbook does")
        eventually(lambda: self._ready(new), timeout=timeout,
                   description=f"the replaced {new} Ready (unsealed, serving)")
        self.wait_vault_active(timeout)
        return new

    def _ready(self, name: str) -> bool:
        pod = next((p for p in self.vault_pods() if p.metadata.name == name), None)
        return bool(pod and pod.status.conditions and any(
            c.type == "Ready" and c.status == "True" for c in pod.status.conditions))

    def wait_vault_active(self, timeout: float = 120) -> str:
        """The name of the Vault Pod the cluster elected active (service registration's
        label on a Ready Pod: `vault-active=true`, `openbao-active=true` for OpenBao),
        once there is one. A single dev-mode
        Pod carries no such label: then it is the one, once Ready. A Pod being deleted
        keeps its label and Ready condition for a moment: it is never the answer (seen
        in CI: a write right after deleting the active Pod went to the dying one)."""
        def active() -> str | None:
            pods = [p for p in self.vault_pods() if p.metadata.deletion_timestamp is None]
            if len(pods) == 1 and self._ready(pods[0].metadata.name):
                return str(pods[0].metadata.name)
            return next((str(p.metadata.name) for p in pods
                         if "true" in ((p.metadata.labels or {}).get("vault-active"),
                                       (p.metadata.labels or {}).get("openbao-active"))
                         and self._ready(p.metadata.name)), None)

        found: str = eventually(active, timeout=timeout,
                                description="an active Vault Pod, Ready")
        return found

    def cordon(self, node: str) -> None:
        """`kubectl cordon NODE`: nothing new is scheduled there (undone at teardown)."""
        self.kube.core.patch_node(node, {"spec": {"unschedulable": True}})
        self._cordoned.add(node)

    def uncordon(self, node: str) -> None:
        self.kube.core.patch_node(node, {"spec": {"unschedulable": False}})
        self._cordoned.discard(node)

    def scale_eso(self, replicas: int) -> None:
        dep = self.faults["eso_deployment"]
        key = (dep["namespace"], dep["name"])
        current = self.kube.apps.read_namespaced_deployment_scale(dep["name"],
                                                                  dep["namespace"])
        self._replicas.setdefault(key, int(current.spec.replicas or 0) if current.spec else 0)
        self.kube.apps.patch_namespaced_deployment_scale(
            dep["name"], dep["namespace"], {"spec": {"replicas": replicas}})

    @contextmanager
    def eso_down(self, timeout: float = 120) -> Iterator[None]:
        """ESO scaled to 0 for the duration — its Pods gone, not only told to go: a
        terminating controller still reconciles (seen in CI: a force-sync delivered
        right after the scale-down) — then back."""
        self.scale_eso(0)
        dep = self.faults["eso_deployment"]
        spec = self.kube.apps.read_namespaced_deployment(dep["name"], dep["namespace"]).spec
        selector = ",".join(f"{k}={v}" for k, v in (spec.selector.match_labels or {}).items())
        eventually(lambda: not self.kube.core.list_namespaced_pod(
            dep["namespace"], label_selector=selector).items, timeout=timeout,
            description=f"every Pod of deployment {dep['namespace']}/{dep['name']} gone")
        try:
            yield
        finally:
            self.undo_all()

    def undo_all(self) -> None:
        for node in list(self._cordoned):
            self.uncordon(node)
        for (ns, name), replicas in self._replicas.items():
            self.kube.apps.patch_namespaced_deployment_scale(
                name, ns, {"spec": {"replicas": replicas}})
        self._replicas.clear()
