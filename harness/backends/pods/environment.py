"""The `pods` backend: the platform as real Pods on the local control plane's real node.

The install is the shared chart plan (`backends/install`) — CRDs, the Helm charts with
their values (the OpenBao post-renderer included), Vault's init and unseal through
`kubectl exec` — with the cluster being the local control plane plus the real node
(`harness up --components kube,node`) and the images built here imported into it. What
this backend fixes in that plan, kind gets too.

Every Pod of every release is pinned to the real node (the post-renderer's `pin`; one
node, so the Vault chart's anti-affinity is dropped) with volumes from its `local-path`
storage class. Services are reached from the host through the node's bridge to their
ClusterIPs — not `kubectl port-forward`, which pins one Pod and breaks when a fault
deletes it.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

from harness.backends.existing import BackendError
from harness.backends.install.charts import deep_merge
from harness.backends.install.environment import KindUnavailable, Step
from harness.backends.install.host_services import HOST_SERVICES, HostServices
from harness.errors import HarnessError
from harness.settings import Settings
from harness.toolchain import Toolchain

if TYPE_CHECKING:
    from harness.backends.local.components.node import Node
    from harness.backends.local.environment import LocalEnvironment

PODS_CAPABILITIES = frozenset({"eso-metrics", "pod-faults", "prometheus", "alert-receiver",
                               "gitops", "in-cluster"})
LOCAL_COMPONENTS = ("kube", "node", "git")
RELEASES = ("vault", "external-secrets", "prometheus", "argocd")
IMAGES = ("openbao", "external-secrets", "prometheus", "alertmanager", "argocd", "redis")


class PodsEnvironment(HostServices):
    backend = "pods"
    release_names = RELEASES
    post_render = ("pin",)

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        from harness.backends.local.components.node import STORAGE_CLASS
        from harness.backends.local.components.node.addons import on_real_node

        super().__init__(settings, toolchain, vault_overrides)
        self.capabilities = PODS_CAPABILITIES
        vault = self.vault_chart
        vault.values = deep_merge(vault.values, {"server": {
            "affinity": "", "dataStorage": {"storageClass": STORAGE_CLASS}}})
        if argocd := self.chart("argocd"):
            # Helm passes hooks (the chart's redis-secret-init Job) by the post-renderer:
            # the chart's own placement values reach them
            argocd.values = deep_merge(argocd.values, {"global": on_real_node({})})
        self.local_settings = self.settings.with_(state_dir=self.settings.state_dir / "local",
                                                  components=LOCAL_COMPONENTS)
        self.config.kubeconfig = self.local_settings.state_dir / "kubeconfig"

    def local(self) -> LocalEnvironment:
        from harness.backends.local.environment import LocalEnvironment

        return LocalEnvironment(self.local_settings, self.toolchain)

    def cluster_steps(self) -> list[Step]:
        return [Step("preflight: root, the node's toolchain, the images",
                     action=self.preflight),
                Step("local control plane + the real node + the Git server",
                     action=self.start_cluster),
                Step(f"import images into the node: {', '.join(IMAGES)}",
                     action=self.import_images),
                Step(f"publish the Git server and the alert receiver in-cluster "
                     f"(git.{HOST_SERVICES}, alert-receiver.{HOST_SERVICES})",
                     action=self.publish_host_services)]

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise KindUnavailable("the pods backend's node needs root")
        for tool in ("kubernetes-node", "node-runtime", "image-tools", "helm"):
            if problem := self.toolchain.problem(tool):
                raise BackendError(f"{problem}; run: ./deploy-local.sh --setup-only")

    def start_cluster(self) -> None:
        """Owned by this process until `detach`: if it dies half-way, the next run's
        reaper stops the cluster too."""
        self.local().up(list(LOCAL_COMPONENTS), mode="session")

    def detach(self) -> None:
        super().detach()
        self.local().attach().keep_running()

    def publish(self, namespace: str, service: str, host_port: int, port: int) -> str:
        """Through the node's bridge (`Node.publish`)."""
        return self.node().publish(namespace, service, host_port, port)

    def node(self) -> Node:
        from harness.backends.local.components.node import Node

        node = self.local().attach().component("node")
        assert isinstance(node, Node)
        return node

    def import_images(self) -> None:
        self.node().import_images(list(IMAGES))

    def forward(self, namespace: str, service: str, port: int) -> str:
        """The node's bridge: 127.0.0.1 on the host to the Service's ClusterIP."""
        return self.node().expose(namespace, service, port)

    def down(self) -> None:
        """Everything stopped and its data removed: a pods environment is not resumed
        (its Vault keys, PVCs and etcd belong together), the next `up` starts clean."""
        self.stop_session()
        try:
            self.local().down(purge=True)
        except HarnessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
