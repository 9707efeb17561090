"""The `pods` backend: the platform as real Pods on the local control plane's real node.

The install is the kind backend's plan, step for step — CRDs, the Helm charts with their
values (the OpenBao post-renderer included), `init_vault` through `kubectl exec`, the
port-forwards — with kind's own steps (create a cluster, `kind load`) replaced by the
local control plane plus the real node (`harness up --components kube,node`) and an
import of the images built here. What this backend fixes in that plan, kind gets too.

Every chart is pinned to the real node (its label and taint; one node, so the Vault
chart's anti-affinity is dropped) with volumes from its `local-path` storage class. Not
yet installed: kube-prometheus-stack (the Prometheus Operator's images are not built),
so this backend has no `prometheus` capability, and Argo CD (its chart runs on the node;
wiring the harness's Git server in-cluster is the next step).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from harness.backends.existing import BackendError
from harness.backends.kind.environment import (
    POD_FAULTS,
    Chart,
    KindEnvironment,
    KindUnavailable,
    Step,
    deep_merge,
)
from harness.errors import HarnessError
from harness.settings import Settings
from harness.toolchain import Toolchain

PODS_CAPABILITIES = frozenset({"eso-metrics", "pod-faults"})
RELEASES = ("vault", "external-secrets")
IMAGES = ("openbao", "external-secrets")


def pinned_to_the_node(chart: Chart) -> dict[str, Any]:
    """The chart's values, with every Pod of the release on the real node."""
    from harness.backends.local.components.node import STORAGE_CLASS
    from harness.backends.local.components.node.addons import on_real_node

    place = on_real_node({})
    if chart.release == "vault":
        return deep_merge(chart.values, {"server": {
            **place, "affinity": "", "dataStorage": {"storageClass": STORAGE_CLASS}}})
    return deep_merge(chart.values, {**place, "webhook": place, "certController": place,
                                     "serviceMonitor": {"enabled": False}})


class PodsEnvironment(KindEnvironment):
    backend = "pods"

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        super().__init__(settings, toolchain, vault_overrides)
        self.dir = self.settings.state_dir / "pods"
        self.capabilities = PODS_CAPABILITIES
        self.charts = [c for c in self.charts if c.release in RELEASES]
        for chart in self.charts:
            chart.values = pinned_to_the_node(chart)
        self.local_settings = self.settings.with_(state_dir=self.settings.state_dir / "local",
                                                  components=("kube", "node"))
        self.config.kubeconfig = self.local_settings.state_dir / "kubeconfig"

    def local(self) -> Any:
        from harness.backends.local.environment import LocalEnvironment

        return LocalEnvironment(self.local_settings, self.toolchain)

    def plan(self) -> list[Step]:
        steps = [Step("preflight: root, the node's toolchain, the images",
                      action=self.preflight),
                 Step("local control plane + the real node", action=self.start_cluster),
                 Step(f"import images into the node: {', '.join(IMAGES)}",
                      action=self.import_images)]
        kind_only = ("preflight", "create the cluster", "load image")
        steps += [s for s in super().plan() if not s.name.startswith(kind_only)]
        return steps

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise KindUnavailable("the pods backend's node needs root")
        for tool in ("kubernetes-node", "node-runtime", "image-tools", "helm"):
            if problem := self.toolchain.problem(tool):
                raise BackendError(f"{problem}; run: ./deploy-local.sh --setup-only")

    def start_cluster(self) -> None:
        self.local().up(["kube", "node"], mode="detached")

    def import_images(self) -> None:
        self.local().attach().component("node").import_images(list(IMAGES))

    def port_forwards(self) -> None:
        """Vault and ESO's metrics on the host's 127.0.0.1 through the node's bridge to
        their Services' ClusterIPs — not `kubectl port-forward`, which pins one Pod and
        breaks when a fault deletes it (found by the pod-fault suite)."""
        node = self.local().attach().component("node")
        self.config.vault_address = "http://" + node.expose("vault", "vault", 8200)
        metrics = node.expose("external-secrets", "external-secrets-metrics", 8080)
        self.config.eso_metrics = [f"http://{metrics}/metrics"]
        self.config.prometheus = None
        self.config.alertmanager = None
        self.config.faults = dict(POD_FAULTS)

    def faults(self, kube: Any) -> Any:
        """Kubernetes faults, and a replaced Vault Pod unsealed with the original keys
        through `kubectl exec`, as the runbook says to."""
        from harness.faults.kube import KubeFaults

        return KubeFaults(kube, self.config.faults, unseal=self.unseal_pod)

    def up(self, progress: Callable[[str], None] = lambda _m: None) -> PodsEnvironment:
        self.render(self.dir)
        super().up(progress)
        return self

    def down(self) -> None:
        self.stop_session()
        try:
            self.local().down()
        except HarnessError:
            pass
