"""The local Kubernetes control plane: kube-apiserver, kube-controller-manager,
kube-scheduler (1.34, built from k8s.io/kubernetes) and KWOK fake nodes.

The apiserver runs as envtest runs it (TLS, RBAC, ServiceAccount issuer and keys) but,
unlike envtest, keeps the ServiceAccount admission plugin and has a controller-manager:
the customer's platform needs token Secrets populated (Vault's `vault-auth-secret`),
ownerReference garbage collection (ESO owns its Secrets) and namespace deletion.
KWOK plays the kubelets, so scheduled Pods become Running and Deployments Available
without a container runtime.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import yaml

from harness.backends.local.components.base import Component, Step
from harness.errors import HarnessError
from harness.rules import BASE_SCRAPE, format_duration
from harness.runtime.pki import CertPair, write_private
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ManagedProcess, ProcessSpec
from harness.wait import eventually

APISERVER_SCRAPE_FLOOR = 10.0  # seconds: see Kube.scrape_jobs

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, CoreV1Api, V1Node

SERVICE_CIDR = "10.0.0.0/24"  # ClusterIP bookkeeping only: nothing listens there
APISERVER_NAMES = ("127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
                   "10.0.0.1")
# With a real node (components/node.py): the address the apiserver advertises, which the
# `kubernetes` Service's endpoints name. It exists only inside the node's network
# namespace, where the node's bridge listens on it and carries connections to the
# apiserver on the host's 127.0.0.1.
NODE_APISERVER_IP = "172.30.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"

# Node sizes per profile, after the spec's resource budgets (dev: 2 CPU / 4 GB).
NODES = {
    "dev": (1, "2", "4Gi"),
    "staging": (3, "4", "8Gi"),
    "prod": (3, "8", "16Gi"),
}

CLIENTS = {
    # name: (common name, organization)
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    # KWOK stands in for every kubelet; the node authorizer would want one identity per
    # node, so it gets cluster-admin as upstream's kwokctl does.
    "kwok": ("kwok-controller", "system:masters"),
    # The apiserver's identity towards kubelets (logs, exec, port-forward).
    "apiserver-kubelet": ("kube-apiserver-kubelet-client", "system:masters"),
}


def egress_socket(state_root: Path) -> Path:
    """The unix socket of the real node's CONNECT proxy: the apiserver's way into the
    node's network namespace (kubelet, Pods, webhooks in Pods)."""
    return state_root / "node" / "egress.sock"


EGRESS_CONFIG = """apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: {socket}
"""


def kubeconfig_yaml(server: str, ca: bytes, cert: bytes, key: bytes, user: str) -> str:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "heracles", "cluster": {
            "server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "heracles", "context": {"cluster": "heracles", "user": user}}],
        "current-context": "heracles",
    })


def kubeconfig_token_yaml(server: str, ca: bytes, token: str, user: str) -> str:
    """A kubeconfig that authenticates with a ServiceAccount token (0600 on disk)."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "heracles", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "heracles", "context": {"cluster": "heracles", "user": user}}],
        "current-context": "heracles",
    })


class Kube(Component):
    name = "kube"
    requires = ("etcd",)
    port_names = ("kube.apiserver", "kube.controller-manager", "kube.scheduler", "kwok")
    toolchain = ("kubernetes", "kwok")

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{self.ctx.port('kube.apiserver')}"

    @property
    def with_node(self) -> bool:
        """A real node is part of this environment: the apiserver then advertises an
        address Pods reach, keeps the `kubernetes` endpoints, authorizes kubelets as
        nodes and reaches them through the node's egress proxy."""
        return "node" in self.ctx.components

    def apiserver_stale(self) -> bool:
        """The running apiserver lacks the real node's flags (or has them without a
        node): `up --components kube,node` on a running `kube` would otherwise leave Pods
        without the `kubernetes` Service and the apiserver without a way to kubelets."""
        api = self.process("kube-apiserver")
        if not api.running() or api.pid is None:
            return False
        try:
            has_egress = any(a.startswith("--egress-selector-config-file")
                             for a in psutil.Process(api.pid).cmdline())
        except psutil.Error:
            return False
        return has_egress != self.with_node

    def ready(self) -> bool:
        return super().ready() and not self.apiserver_stale()

    def start(self, on_started: Callable[[ManagedProcess], None] | None = None) -> None:
        if self.apiserver_stale():
            self.process("kube-apiserver").stop()  # started again below, with the flags
        super().start(on_started)

    @property
    def egress_config(self) -> Path:
        return self.ctx.state.root / "kube" / "egress-selector.yaml"

    def endpoints(self) -> dict[str, str]:
        return {"kube-apiserver": self.address, "kubeconfig": str(self.ctx.state.kubeconfig)}

    def kubeconfig_path(self, client: str) -> str:
        if client == "admin":
            return str(self.ctx.state.kubeconfig)
        return str(self.ctx.state.root / "kube" / f"{client}.kubeconfig")

    # ---- files -------------------------------------------------------------------------
    def write_files(self) -> None:
        pki = self.ctx.pki

        def ensure(name: str, *identities: str, **names: str | None) -> None:
            # Each pair on its own: a first start interrupted half-way (some issued,
            # some not) is completed by the next `up`, not refused.
            pair = pki.pair(name)
            if not (pair.cert.exists() and pair.key.exists()):
                pki.issue(name, *identities, **names)

        ensure("apiserver", *APISERVER_NAMES, common_name="kube-apiserver")
        for serving in ("controller-manager-serving", "scheduler-serving"):
            ensure(serving, "127.0.0.1", "localhost")
        for client, (cn, org) in CLIENTS.items():
            ensure(f"client-{client}", "127.0.0.1", common_name=cn, organization=org)
        pki.service_account_keys()
        if self.with_node:
            (self.ctx.state.root / "kube").mkdir(parents=True, exist_ok=True)
            self.egress_config.write_text(
                EGRESS_CONFIG.format(socket=egress_socket(self.ctx.state.root)))
        # Kubeconfigs name the current apiserver port (it may change across down/up).
        ca = pki.ca_cert.read_bytes()
        for client in CLIENTS:
            if client == "apiserver-kubelet":
                continue  # a certificate the apiserver presents, not a kubeconfig user
            pair = pki.pair(f"client-{client}")
            text = kubeconfig_yaml(self.address, ca, pair.cert.read_bytes(),
                                   pair.key.read_bytes(), client)
            write_private(Path(self.kubeconfig_path(client)), text.encode())

    # ---- processes ---------------------------------------------------------------------
    def process_specs(self) -> list[ProcessSpec]:
        pki = self.ctx.pki
        sa = pki.sa_pair
        api_port = self.ctx.port("kube.apiserver")
        apiserver = self.pki_pair("apiserver")
        etcd = f"http://127.0.0.1:{self.ctx.port('etcd.client')}"
        ca = pki.ca_cert
        apiserver_argv = [
            self.bin("kubernetes", "kube-apiserver"),
            f"--etcd-servers={etcd}",
            "--bind-address=127.0.0.1",
            f"--advertise-address={NODE_APISERVER_IP if self.with_node else '127.0.0.1'}",
            f"--secure-port={api_port}",
            f"--tls-cert-file={apiserver.cert}",
            f"--tls-private-key-file={apiserver.key}",
            f"--client-ca-file={ca}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,"
            "DefaultStorageClass,ResourceQuota,LimitRanger,NodeRestriction",
            f"--endpoint-reconciler-type={'lease' if self.with_node else 'none'}",
            f"--kubelet-client-certificate={self.pki_pair('client-apiserver-kubelet').cert}",
            f"--kubelet-client-key={self.pki_pair('client-apiserver-kubelet').key}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            # No watch cache: lists and watches are served from etcd, as the cache is
            # meant to be invisible to clients. Its ~100 cachers (one per resource, the
            # CRDs' included) cost a dev start 1.5 s of wall and the apiserver at rest
            # 1.84 -> 0.86 CPU-s a minute (docs/suite-time.md, session 8).
            "--watch-cache=false",
            f"--cert-dir={self.ctx.state.data('kube-apiserver')}",
            "--v=1",
        ]
        if self.with_node:
            apiserver_argv.append(f"--egress-selector-config-file={self.egress_config}")
        kcm_argv = [
            self.bin("kubernetes", "kube-controller-manager"),
            *self._control_loop_flags("controller-manager"),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={ca}",
            f"--cluster-signing-cert-file={ca}",
            f"--cluster-signing-key-file={pki.ca_key}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
            "--node-monitor-grace-period=60s",
            "--v=1",
        ]
        sched_argv = [self.bin("kubernetes", "kube-scheduler"),
                      *self._control_loop_flags("scheduler"), "--v=1"]
        kwok_port = self.ctx.port("kwok")
        kwok_argv = [
            self.bin("kwok", "kwok"),
            f"--kubeconfig={self.kubeconfig_path('kwok')}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-ip=127.0.0.1",
            # Found here: without node leases KWOK's nodes only heartbeat through their
            # status, and the node controller marks them NotReady (event NodeNotReady,
            # unreachable taints) about once a minute: Pods created then stay Pending.
            "--node-lease-duration-seconds=40",
        ]
        kcm_url = f"https://127.0.0.1:{self.ctx.port('kube.controller-manager')}/healthz"
        sched_url = f"https://127.0.0.1:{self.ctx.port('kube.scheduler')}/healthz"
        return [
            self.spec("kube-apiserver", apiserver_argv,
                      http_ok(f"{self.address}/readyz", ca=ca),
                      data_dir=self.ctx.state.data("kube-apiserver")),
            # The control loops need only the apiserver: they start together.
            self.spec("kube-controller-manager", kcm_argv, http_ok(kcm_url, ca=ca),
                      after=("kube-apiserver",)),
            self.spec("kube-scheduler", sched_argv, http_ok(sched_url, ca=ca),
                      after=("kube-apiserver",)),
            self.spec("kwok", kwok_argv, http_ok(f"http://127.0.0.1:{kwok_port}/healthz"),
                      env={"HOME": str(self.ctx.state.data("kwok"))},
                      after=("kube-apiserver",)),
        ]

    def _control_loop_flags(self, name: str) -> list[str]:
        """What kube-controller-manager and kube-scheduler share: their client identity,
        a TLS serving endpoint on 127.0.0.1 from the harness CA, no leader election."""
        kubeconfig = self.kubeconfig_path(name)
        serving = self.pki_pair(f"{name}-serving")
        return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}", "--bind-address=127.0.0.1",
                f"--secure-port={self.ctx.port(f'kube.{name}')}",
                f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
                "--leader-elect=false"]

    def pki_pair(self, name: str) -> CertPair:
        return self.ctx.pki.pair(name)

    # ---- what the rest of the environment knows of it ---------------------------------
    def service_aliases(self) -> dict[str, str]:
        return {"https://kubernetes.default.svc:443": self.address,
                "https://kubernetes.default.svc": self.address}

    def scrape_jobs(self) -> list[dict[str, Any]]:
        """The apiserver at its own pace: its /metrics is tens of thousands of series, and
        rendering, gzipping and ingesting them every second (the test time scale) was
        half the apiserver's idle CPU and four fifths of Prometheus's (measured: 10.7% ->
        4.6% and 5.5% -> 1.1% of a core). Its scrape is never more frequent than every
        APISERVER_SCRAPE_FLOOR seconds: a rule on apiserver metrics sees them that late."""
        admin = self.ctx.pki.pair("client-admin")
        every = max(APISERVER_SCRAPE_FLOOR, BASE_SCRAPE / self.ctx.settings.time_scale)
        return [{"job_name": "kube-apiserver", "scheme": "https",
                 "scrape_interval": format_duration(every),
                 "scrape_timeout": format_duration(min(every, APISERVER_SCRAPE_FLOOR)),
                 "tls_config": {"ca_file": str(self.ctx.pki.ca_cert),
                                "cert_file": str(admin.cert), "key_file": str(admin.key)},
                 "static_configs": [{"targets": [hostport(self.address)]}]}]

    # ---- after start -------------------------------------------------------------------
    def start_steps(self) -> dict[str, Step]:
        """The Nodes are created as soon as the apiserver answers, while the control
        loops and KWOK start: KWOK finds them waiting."""
        return {"nodes": (("kube-apiserver",), self.create_nodes)}

    def configure(self) -> None:
        self.ensure_nodes()

    def node_names(self) -> list[str]:
        count = NODES[self.ctx.settings.profile][0]
        return [f"kwok-node-{i}" for i in range(count)]

    def ensure_nodes(self, timeout: float = 60.0) -> None:
        """Create the profile's fake Nodes (idempotent) and wait until KWOK reports Ready."""
        from kubernetes import client

        api = client.CoreV1Api(self.api_client())
        self.create_nodes(api)

        def nodes_ready() -> bool:
            nodes = {n.metadata.name: n for n in api.list_node().items if n.metadata}
            not_ready = [n for n in self.node_names() if not _node_ready(nodes.get(n))]
            if not_ready:
                raise AssertionError(f"not Ready: {', '.join(not_ready)}")
            return True

        eventually(nodes_ready, timeout=timeout, interval=0.05, error=HarnessError,
                   retry_on=(AssertionError,), description="KWOK makes the nodes Ready")

    def create_nodes(self, api: CoreV1Api | None = None) -> None:
        """The profile's fake Nodes, those missing (KWOK makes them Ready)."""
        from kubernetes import client

        api = api or client.CoreV1Api(self.api_client())
        _count, cpu, mem = NODES[self.ctx.settings.profile]
        existing = {n.metadata.name for n in api.list_node().items if n.metadata}
        for name in self.node_names():
            if name in existing:
                continue
            api.create_node(client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=name,
                    annotations={"kwok.x-k8s.io/node": "fake",
                                 "node.alpha.kubernetes.io/ttl": "0"},
                    labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64", "type": "kwok",
                            "heracles.dev/profile": self.ctx.settings.profile}),
                status=client.V1NodeStatus(
                    allocatable={"cpu": cpu, "memory": mem, "pods": "110"},
                    capacity={"cpu": cpu, "memory": mem, "pods": "110"},
                    node_info=client.V1NodeSystemInfo(
                        architecture="amd64", operating_system="linux",
                        kubelet_version="v1.34.4-kwok", kube_proxy_version="",
                        boot_id="", machine_id="", system_uuid="", kernel_version="",
                        os_image="kwok", container_runtime_version="kwok")),
            ))

    def api_client(self) -> ApiClient:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.ctx.state.kubeconfig))


def _node_ready(node: V1Node | None) -> bool:
    if node is None or not node.status or not node.status.conditions:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
