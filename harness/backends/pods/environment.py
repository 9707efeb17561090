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

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.existing import BackendError
from harness.backends.install.charts import deep_merge
from harness.backends.install.environment import (
    TARGETS,
    ChartsEnvironment,
    KindUnavailable,
    Step,
)
from harness.backends.local.components.git import IN_CLUSTER_URL, REPO
from harness.errors import HarnessError
from harness.runtime.probes import http_ok
from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV
from harness.runtime.redact import REDACTOR
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.components.node import Node
    from harness.backends.local.environment import LocalEnvironment
    from harness.clients.alerts import ReceivedAlerts

PODS_CAPABILITIES = frozenset({"eso-metrics", "pod-faults", "prometheus", "alert-receiver",
                               "gitops", "in-cluster"})
LOCAL_COMPONENTS = ("kube", "node", "git")
RELEASES = ("vault", "external-secrets", "prometheus", "argocd")
IMAGES = ("openbao", "external-secrets", "prometheus", "alertmanager", "argocd", "redis")
HOST_SERVICES = "heracles"  # the namespace of the harness's own services, published


class ReceivedFile:
    """The notifications the harness's receiver wrote, one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def notifications(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()
                if line.strip()]


class PodsEnvironment(ChartsEnvironment):
    backend = "pods"
    release_names = RELEASES
    post_render = ("pin",)
    receiver_url = f"http://alert-receiver.{HOST_SERVICES}.svc.cluster.local/alerts"

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

    @property
    def received_file(self) -> Path:
        return self.dir / "alerts" / "received.jsonl"

    def publish_host_services(self) -> None:
        """The Git server (the platform repository, credentials required) and the
        webhook receiver, as Services Argo CD and Alertmanager reach by DNS."""
        [port] = self.registry.ports.allocate(self.run_id, 1)
        self.received_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, RUN_ID_ENV: self.run_id, REGISTRY_ENV: str(self.registry.root)}
        self.forwards.append(subprocess.Popen(
            [sys.executable, "-m", "harness.daemons.receiver", "--listen",
             f"127.0.0.1:{port}", "--out", str(self.received_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True))
        eventually(lambda: http_ok(f"http://127.0.0.1:{port}/healthz")(), timeout=30,
                   description="the alert receiver answers")
        node = self.node()
        node.publish(HOST_SERVICES, "alert-receiver", port, 80)
        git = self.local().attach().git
        node.publish(HOST_SERVICES, "git", int(git.address.rsplit(":", 1)[1]), 80)

    def argocd_steps(self) -> list[Step]:
        return [Step("argocd login, with the password from argocd-initial-admin-secret",
                     action=self.argocd_login),
                Step(f"argocd repo add {IN_CLUSTER_URL}/{REPO} --username --password",
                     action=self.argocd_repo_add)]

    def argocd(self, *args: str) -> str:
        """The `argocd` CLI against the API server exposed on 127.0.0.1; its config in
        the state dir, nothing in ~/.config."""
        run = subprocess.run([self.tool("argocd"), "--config", str(self.dir / "argocd.cfg"),
                              *args], capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise BackendError(f"argocd {args[0]}: "
                               f"{REDACTOR.redact((run.stderr or run.stdout).strip())}")
        return run.stdout

    def argocd_login(self) -> None:
        import base64

        encoded = eventually(lambda: self.run_kubectl(
            "get", "secret", "-n", "argocd", "argocd-initial-admin-secret", "-o",
            "jsonpath={.data.password}") or None, timeout=120, retry_on=(BackendError,),
            error=BackendError, description="argocd-initial-admin-secret")
        password = base64.b64decode(encoded).decode()
        REDACTOR.add(password)
        address = self.forward(*TARGETS["argocd"])
        eventually(lambda: self.argocd("login", address, "--username", "admin",
                                       "--password", password, "--insecure") or True,
                   timeout=120, retry_on=(BackendError,), error=BackendError,
                   description="argocd login")

    def argocd_repo_add(self) -> None:
        creds = self.local().attach().git.credentials()
        if creds is None:
            raise BackendError("the Git server runs without credentials")
        self.argocd("repo", "add", f"{IN_CLUSTER_URL}/{REPO}", "--username", creds[0],
                    "--password", creds[1])

    def alerts(self) -> ReceivedAlerts:
        from harness.clients.alerts import ReceivedAlerts

        return ReceivedAlerts(ReceivedFile(self.received_file))

    def git_url(self) -> str:
        return self.local().attach().git.url()

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
