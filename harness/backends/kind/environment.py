"""The kind backend: a kind cluster (kind from its Go module) with the platform installed
through the shared chart plan (`backends/install`: CRDs, Helm charts with the OpenBao
post-renderer, init and unseal through `kubectl exec`, the spec's Argo CD steps).

Where Docker answers already (a laptop, a CI runner with Docker), kind runs against it
unchanged. Where none does and we are root (this machine), the backend starts a private
Docker daemon (`docker.py`: its own network and mount namespaces, the run's cgroups),
and carries to the host's 127.0.0.1 what it needs through `harness.daemons.nsbridge`:
the API server, and each Service it reaches (to its ClusterIP, routed to the node inside
that namespace, so kube-proxy picks a ready endpoint as for any client). The harness's
Git server and alert receiver are published in-cluster the other way.

The node image (`--kind-image`): `local` is the one `harness images node-image`
assembles here, with every image preloaded and the platform's images loaded by
`kind load image-archive`; `official` is kindest/node pinned by digest, with images
pulled by the node; `auto` takes the local one when it is built, else the official.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.backends.existing import BackendError
from harness.backends.install.charts import deep_merge
from harness.backends.install.environment import KindUnavailable, Step
from harness.backends.install.host_services import HOST_SERVICES, HostServices
from harness.errors import HarnessError
from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV, ManagedProcess, ProcessSpec
from harness.runtime.registry import kill_processes, processes_of_run
from harness.settings import Settings
from harness.toolchain import Toolchain

if TYPE_CHECKING:
    from harness.backends.kind.docker import PrivateDockerd
    from harness.backends.local.environment import LocalEnvironment

KIND_CAPABILITIES = frozenset({"prometheus", "eso-metrics", "pod-faults", "in-cluster",
                               "gitops", "alert-receiver"})
# With the user's own Docker, the cluster cannot reach a service on the host's 127.0.0.1
# without a listener on another address, which the harness never opens.
SYSTEM_DOCKER_CAPABILITIES = KIND_CAPABILITIES - {"gitops", "alert-receiver"}
LOCAL_COMPONENTS = ("git",)
# The platform's images, loaded into the node when it is the one built here.
PLATFORM_IMAGES = ("openbao", "external-secrets", "prometheus", "alertmanager", "argocd",
                   "redis", "sample-app")

# kind v0.30.0's own default node image (pkg/apis/config/defaults/image.go): Kubernetes
# v1.34.0 — the newest kindest/node that kind release publishes for our v1.34 line.
NODE_IMAGE = ("kindest/node:v1.34.0@sha256:"
              "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a")
SERVICE_SUBNET = "10.96.0.0/16"  # kind's default, routed to the node in the private netns
# kubelet 1.34 refuses cgroup v1 unless told otherwise; kind does not tell it.
KUBELET_PATCH = "kind: KubeletConfiguration\nfailCgroupV1: false\n"


def cluster_config(name: str, api_port: int, image: str = NODE_IMAGE) -> dict[str, Any]:
    """kind's v1alpha4 Cluster: one control-plane node, the API on 127.0.0.1 only (every
    listener binds 127.0.0.1)."""
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": name,
            "networking": {"apiServerAddress": "127.0.0.1", "apiServerPort": api_port,
                           "serviceSubnet": SERVICE_SUBNET},
            "kubeadmConfigPatches": [KUBELET_PATCH],
            "nodes": [{"role": "control-plane", "image": image}]}


# The v1alpha4 fields this backend writes, as kind's types.go declares them: a fast check
# without Docker (`kind create cluster` reads its config only once a daemon answers; the
# scenarios run kind itself against a private dockerd — backends/kind/docker.py).
KIND_FIELDS = {"": {"kind", "apiVersion", "name", "networking", "nodes",
                    "kubeadmConfigPatches"},
               "networking": {"apiServerAddress", "apiServerPort", "ipFamily", "podSubnet",
                              "serviceSubnet", "disableDefaultCNI", "kubeProxyMode"},
               "nodes": {"role", "image", "extraPortMappings", "extraMounts", "labels",
                         "kubeadmConfigPatches"}}


def validate_cluster_config(cfg: dict[str, Any], local_images: frozenset[str] = frozenset()
                            ) -> list[str]:
    """Problems with a cluster config. A node image must be pinned by digest — or be one
    built here (`local_images`: its identity is the image ID the harness recorded)."""
    problems = []
    if cfg.get("apiVersion") != "kind.x-k8s.io/v1alpha4" or cfg.get("kind") != "Cluster":
        problems.append("apiVersion/kind must be kind.x-k8s.io/v1alpha4 Cluster")
    problems += [f"unknown field {k}" for k in set(cfg) - KIND_FIELDS[""]]
    net = cfg.get("networking", {})
    problems += [f"unknown field networking.{k}" for k in set(net) - KIND_FIELDS["networking"]]
    if net.get("apiServerAddress") != "127.0.0.1":
        problems.append("networking.apiServerAddress must be 127.0.0.1")
    nodes = cfg.get("nodes") or []
    if not any(n.get("role") == "control-plane" for n in nodes):
        problems.append("no control-plane node")
    for i, n in enumerate(nodes):
        problems += [f"unknown field nodes[{i}].{k}" for k in set(n) - KIND_FIELDS["nodes"]]
        if n.get("role") not in ("control-plane", "worker"):
            problems.append(f"nodes[{i}].role must be control-plane or worker")
        image = str(n.get("image", ""))
        if "@sha256:" not in image and image not in local_images:
            problems.append(f"nodes[{i}].image must be pinned by digest (or be the node "
                            "image built here)")
        for m in n.get("extraPortMappings") or []:
            if m.get("listenAddress") != "127.0.0.1":
                problems.append(f"nodes[{i}].extraPortMappings must listen on 127.0.0.1")
    return problems


def system_docker_answers(docker: str | None = None) -> bool:
    """Whether a Docker daemon answers as the user's `docker` would (DOCKER_HOST or the
    default socket)."""
    docker = docker or shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def kind_capabilities() -> frozenset[str]:
    """What the kind backend can do on this machine, known before anything starts."""
    return SYSTEM_DOCKER_CAPABILITIES if system_docker_answers() else KIND_CAPABILITIES


class KindEnvironment(HostServices):
    """The kind cluster: planned, rendered, created, then used as an existing cluster."""

    backend = "kind"

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        super().__init__(settings, toolchain, vault_overrides)
        # One node (kind's default cluster): the Vault chart's required anti-affinity
        # would leave two of three raft Pods Pending.
        self.vault_chart.values = deep_merge(self.vault_chart.values,
                                             {"server": {"affinity": ""}})
        self.name = f"heracles-{os.urandom(3).hex()}"
        self.capabilities = KIND_CAPABILITIES
        self.kind_image = self.settings.kind_image
        self.docker_mode = ""  # "system" | "private", decided by the preflight
        self.docker_host = ""  # DOCKER_HOST of the private daemon
        self.docker_root = ""  # its temp dir (sockets, wrapper)
        self.api_port = 0
        self.node_image = NODE_IMAGE
        self.node_image_id = ""
        self.dockerd: PrivateDockerd | None = None
        self.node_ip = ""  # the node container's address in the daemon's namespace
        self.bridge_pid: int | None = None
        self.local_settings = self.settings.with_(
            state_dir=self.dir / "local", components=LOCAL_COMPONENTS, git_in_cluster=True)

    # ---- render ------------------------------------------------------------------------
    def local_node_image(self) -> bool:
        """Whether the node image is the one built here."""
        if self.kind_image == "auto":
            from harness.images.node_image import NodeImageBuilder

            self.kind_image = "local" if NodeImageBuilder(
                self.toolchain, self.settings.cache_dir).cached() else "official"
        return self.kind_image == "local"

    def render_extra(self, out: Path) -> set[str]:
        """kind's cluster config, validated against its v1alpha4 types."""
        from harness.images.node_image import NODE_REF

        if self.local_node_image():
            self.node_image = NODE_REF
        cfg = cluster_config(self.name, self.api_port or 6443, self.node_image)
        problems = validate_cluster_config(cfg, frozenset({NODE_REF}))
        if problems:
            raise BackendError(f"kind cluster config: {'; '.join(problems)}")
        (out / "cluster.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        return {self.node_image}

    # ---- the cluster -------------------------------------------------------------------
    def cluster_steps(self) -> list[Step]:
        kind = self.tool("kind")
        private = self.docker_mode == "private"
        steps = [Step("preflight: kind, Docker (the user's, or a private daemon), the "
                      "node image", action=self.preflight)]
        if private:
            steps.append(Step("private Docker daemon: own network and mount namespaces, "
                              "the run's cgroups, runc behind the capability wrapper",
                              action=self.start_docker))
        steps.append(Step(f"node image {self.node_image} in Docker",
                          action=self.node_image_present))
        if private:  # the only way the cluster reaches the host's 127.0.0.1
            steps.append(Step("the Git server (for Argo CD)", action=self.start_git))
        steps.append(Step("create the cluster",
                          [kind, "create", "cluster", "--name", self.name, "--config",
                           str(self.dir / "cluster.yaml"), "--kubeconfig",
                           str(self.config.kubeconfig), "--wait", "180s"]))
        if private:
            steps.append(Step("carry the API server and Services to 127.0.0.1; publish the "
                              f"Git server and the alert receiver (git.{HOST_SERVICES}, "
                              f"alert-receiver.{HOST_SERVICES}); cluster DNS for cluster "
                              "names only", action=self.bridge))
        steps.append(Step("load the platform's images into the node",
                          action=self.load_images))
        return steps

    def argocd_steps(self) -> list[Step]:
        """The spec's `argocd login` / `repo add` need the Git server in-cluster: with
        the user's Docker it is not (no `gitops` capability), Argo CD is left as its
        chart installs it."""
        return super().argocd_steps() if self.docker_mode == "private" else []

    def plan(self) -> list[Step]:
        if not self.docker_mode:  # before the preflight: as this machine would run it
            self.docker_mode = "system" if system_docker_answers() else "private"
        return super().plan()

    def preflight(self) -> None:
        if self.toolchain.problem("kind"):
            raise BackendError(f"{self.toolchain.problem('kind')}; run: harness toolchain "
                               "install --only kind")
        if self.docker_mode == "system":
            self.capabilities = SYSTEM_DOCKER_CAPABILITIES
        elif os.geteuid() != 0:
            raise KindUnavailable("no Docker daemon answers (DOCKER_HOST or the default "
                                  "socket), and starting a private one needs root")
        elif self.toolchain.problem("docker"):
            raise KindUnavailable("no Docker daemon answers, and dockerd is missing: "
                                  "harness toolchain install --only docker")
        if self.node_image != NODE_IMAGE:
            from harness.images.node_image import NodeImageBuilder

            meta = NodeImageBuilder(self.toolchain, self.settings.cache_dir).cached()
            if meta is None:
                raise KindUnavailable("the node image is not built: harness images "
                                      "node-image (or --kind-image official)")
            self.node_image_id = meta.image_id
        elif self.docker_mode == "private":
            raise KindUnavailable(f"--kind-image official: {NODE_IMAGE} must be pulled, and "
                                  "no registry is reachable from the private Docker daemon; "
                                  "build the local one: harness images node-image")

    def docker_env(self) -> dict[str, str]:
        env = {**os.environ, RUN_ID_ENV: self.run_id, REGISTRY_ENV: str(self.registry.root)}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def docker(self, *args: str, timeout: float = 300) -> str:
        docker = shutil.which("docker") if self.docker_mode == "system" else \
            self.tool("docker", "docker")
        run = subprocess.run([docker or "docker", *args], capture_output=True, text=True,
                             env=self.docker_env(), timeout=timeout)
        if run.returncode != 0:
            raise BackendError(f"docker {args[0]}: {(run.stderr or run.stdout).strip()}")
        return run.stdout

    def start_docker(self) -> None:
        from harness.backends.kind.docker import PrivateDockerd

        self.dockerd = PrivateDockerd(self.tool("docker", "dockerd"),
                                      self.tool("docker", "docker"), self.run_id,
                                      str(self.registry.root), self.dir / "logs",
                                      data_root=self.dir / "docker")
        self.docker_host = self.dockerd.host
        self.docker_root = str(self.dockerd.root)
        self.save_record()  # a `down` from elsewhere finds the daemon and its temp dir
        self.dockerd.start()

    def node_image_present(self) -> None:
        if self.node_image == NODE_IMAGE:
            return  # kind pulls it
        from harness.images.node_image import NodeImageBuilder
        from harness.progress import Reporter

        # brought up to date if an input changed since it was built (a cache hit else)
        meta = NodeImageBuilder(self.toolchain, self.settings.cache_dir,
                                Reporter()).build()
        self.node_image_id = meta.image_id
        try:
            present = self.docker("image", "inspect", "--format", "{{.Id}}",
                                  self.node_image, timeout=60).strip()
        except BackendError:
            present = ""
        if present != meta.image_id:
            self.docker("load", "-i", meta.archive, timeout=600)

    def local(self) -> LocalEnvironment:
        from harness.backends.local.environment import LocalEnvironment

        return LocalEnvironment(self.local_settings, self.toolchain)

    def start_git(self) -> None:
        """The Git server on 127.0.0.1, owned by this run until `detach`."""
        self.local().up(list(LOCAL_COMPONENTS), mode="session")

    def detach(self) -> None:
        super().detach()
        if self.docker_mode == "private":  # the Git server runs
            self.local().attach().keep_running()

    # ---- the private daemon's namespace <-> the host -----------------------------------
    @property
    def forwards_file(self) -> Path:
        return self.dir / "bridge" / "forwards.json"

    def dockerd_pid(self) -> int:
        pid = self.dockerd.proc.pid if self.dockerd else self.load_record().get("dockerd_pid")
        if not pid:
            raise BackendError("the kind backend's private Docker daemon is not running")
        return int(pid)

    def bridge(self) -> None:
        """nsbridge in the daemon's namespace: the API server on the host's 127.0.0.1 (the
        port kind's kubeconfig names), the Service network routed to the node there; then
        the host's Git server and receiver as in-cluster Services."""
        node_ip = self.docker("inspect", "--format",
                              "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                              f"{self.name}-control-plane").split()[0]
        self.node_ip = node_ip
        route = subprocess.run(["nsenter", f"--net=/proc/{self.dockerd_pid()}/ns/net", "ip",
                                "route", "replace", SERVICE_SUBNET, "via", node_ip],
                               capture_output=True, text=True, timeout=30)
        if route.returncode != 0:
            raise BackendError(f"route {SERVICE_SUBNET} to the node: {route.stderr.strip()}")
        self.forwards_file.parent.mkdir(parents=True, exist_ok=True)
        api = f"127.0.0.1:{self.api_port}"
        self.forwards_file.write_text(json.dumps([f"{api}={api}"]))
        proc = ManagedProcess(ProcessSpec(
            "kind-bridge",
            [sys.executable, "-m", "harness.daemons.nsbridge", "--netns",
             f"/proc/{self.dockerd_pid()}/ns/net", "--forwards-file", str(self.forwards_file),
             "--ready-file", str(self.forwards_file.parent / "ready")],
            self.dir / "logs" / "kind-bridge.log",
            lambda: (self.forwards_file.parent / "ready").exists(), start_timeout=30),
            self.run_id, str(self.registry.root))
        proc.start()
        self.bridge_pid = proc.pid
        self.save_record()
        self.publish_host_services()
        self.dns_without_upstream()

    def dns_without_upstream(self) -> None:
        """CoreDNS answers cluster names only, as on the real node: kubeadm's Corefile
        forwards the rest to the node's resolver, Docker's embedded DNS, whose upstream
        the private namespace cannot reach — every such query then waits out its
        timeout (gRPC's `_grpc_config.<host>` TXT lookups made Argo CD's repo-server
        miss its liveness probe). Without `forward` they fail at once; `loop` goes with
        it (it probes the upstream)."""
        corefile = self.run_kubectl("get", "configmap", "-n", "kube-system", "coredns",
                                    "-o", "jsonpath={.data.Corefile}")
        kept = re.sub(r"\n\s*forward \. /etc/resolv\.conf \{[^}]*\}", "", corefile)
        kept = re.sub(r"\n\s*loop\n", "\n", kept)
        if kept == corefile:
            raise BackendError("kubeadm's Corefile has no `forward . /etc/resolv.conf` "
                               "block to remove")
        self.run_kubectl("patch", "configmap", "-n", "kube-system", "coredns", "--type",
                         "merge", "-p", json.dumps({"data": {"Corefile": kept}}))
        self.run_kubectl("rollout", "restart", "deployment/coredns", "-n", "kube-system")
        self.run_kubectl("rollout", "status", "deployment/coredns", "-n", "kube-system",
                         "--timeout=120s")

    def _add_forward(self, spec: str) -> None:
        from harness.daemons.nsbridge import add_forward

        pid = self.bridge_pid or self.load_record().get("bridge_pid")
        add_forward(self.forwards_file, int(pid) if pid else None, spec,
                    "the kind backend's daemon namespace")

    def gateway(self) -> str:
        """The `kind` network's IPv4 gateway: the daemon's namespace, seen from the node."""
        out = self.docker("network", "inspect", "kind", "--format",
                          "{{range .IPAM.Config}}{{.Gateway}} {{end}}")
        return next(g for g in out.split() if "." in g)

    def publish(self, namespace: str, service: str, host_port: int, port: int) -> str:
        """The bridge listens on the kind network's gateway inside the daemon's namespace
        and dials the host's 127.0.0.1; a selector-less Service points there."""
        from kubernetes import config as kube_config

        from harness.clients.kube import publish_service

        gateway = self.gateway()
        self._add_forward(f"node:{gateway}:{host_port}=127.0.0.1:{host_port}")
        api = kube_config.new_client_from_config(str(self.config.kubeconfig))
        try:
            return publish_service(api, namespace, service, gateway, port, host_port)
        finally:
            api.close()

    def load_images(self) -> None:
        """The images built here, into the node (`kind load image-archive`): with the
        local node image all of the platform's, so nothing is pulled; with the official
        one the node pulls those, and gets only the fixtures' workload, which no
        registry serves."""
        from harness.images import ImageBuilder

        kind = self.tool("kind")
        keys = list(PLATFORM_IMAGES) if self.node_image != NODE_IMAGE else ["sample-app"]
        for image in ImageBuilder(self.toolchain, self.settings.cache_dir).build(keys):
            run = subprocess.run([kind, "load", "image-archive", image.archive, "--name",
                                  self.name], capture_output=True, text=True,
                                 env=self.docker_env(), timeout=600)
            if run.returncode != 0:
                raise BackendError(f"kind load image-archive {image.ref}: "
                                   f"{run.stderr.strip()[-1000:]}")

    def step_env(self) -> dict[str, str]:
        """kind (and the docker it runs) talk to the chosen daemon; Helm keeps its own."""
        docker = self.docker_env()
        return {**self.helm_env(), **{k: docker[k] for k in (
            RUN_ID_ENV, REGISTRY_ENV, "DOCKER_HOST") if k in docker}}

    def up(self, progress: Any = lambda _m: None) -> KindEnvironment:
        """Crashed runs reaped first (their daemons, node containers, cgroups); what a
        dead run of this state dir left on disk removed (a kind environment is never
        resumed)."""
        self.registry.reap()
        try:
            old = json.loads((self.dir / f"{self.backend}.json").read_text())
        except (OSError, ValueError):
            old = None
        if old is not None:
            if self.registry.get(old.get("run_id", "")) is not None:
                raise BackendError(f"a kind environment runs in {self.dir}: harness down "
                                   "--backend kind first")
            if old.get("docker_root"):
                shutil.rmtree(old["docker_root"], ignore_errors=True)
        shutil.rmtree(self.dir / "docker", ignore_errors=True)
        [self.api_port] = self.registry.ports.allocate(self.run_id, 1)
        super().up(progress)
        return self

    def forward(self, namespace: str, service: str, port: int) -> str:
        """Private daemon: the bridge to the Service's ClusterIP (kube-proxy in the node
        picks a ready endpoint, so a deleted Pod does not break it). The user's Docker:
        `kubectl port-forward` on 127.0.0.1 (one Pod), marked with the run id."""
        [local] = self.registry.ports.allocate(self.run_id, 1)
        if self.docker_mode == "private":
            svc = json.loads(self.run_kubectl("get", "service", "-n", namespace, service,
                                              "-o", "json"))
            cluster_ip = svc.get("spec", {}).get("clusterIP")
            if not cluster_ip or cluster_ip == "None":
                raise BackendError(f"service {namespace}/{service} has no ClusterIP")
            self._add_forward(f"127.0.0.1:{local}={cluster_ip}:{port}")
            return f"127.0.0.1:{local}"
        self.forwards.append(subprocess.Popen(
            [self.kubectl, "--kubeconfig", str(self.config.kubeconfig), "port-forward",
             "-n", namespace, "--address", "127.0.0.1", f"svc/{service}",
             f"{local}:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.docker_env(), start_new_session=True))
        return f"127.0.0.1:{local}"

    # ---- records and teardown ----------------------------------------------------------
    def record_extra(self) -> dict[str, Any]:
        return {"name": self.name, "docker_mode": self.docker_mode,
                "docker_host": self.docker_host, "docker_root": self.docker_root,
                "dockerd_pid": self.dockerd.proc.pid if self.dockerd else None,
                "bridge_pid": self.bridge_pid, "api_port": self.api_port,
                "node_image": self.node_image, "kind_image": self.kind_image}

    @classmethod
    def from_record(cls, settings: Settings) -> KindEnvironment:
        kind = super().from_record(settings)
        assert isinstance(kind, KindEnvironment)
        rec = kind.load_record()
        kind.name = rec["name"]
        for key in ("docker_mode", "docker_host", "docker_root", "node_image",
                    "kind_image"):
            setattr(kind, key, rec.get(key) or getattr(kind, key))
        kind.api_port = int(rec.get("api_port") or 0)
        return kind

    def down(self) -> None:
        """The cluster deleted (while its daemon still runs), then every process of the
        run — the private daemon's containers with it (its cgroups) — and its data."""
        if not self.toolchain.problem("kind") and (
                self.docker_mode == "system" or self.docker_host):
            try:
                subprocess.run([self.tool("kind"), "delete", "cluster", "--name", self.name],
                               capture_output=True, timeout=300, env=self.docker_env())
            except subprocess.TimeoutExpired:
                pass
        self.stop_session()
        try:
            self.local().down(purge=True)
        except HarnessError:
            pass
        if self.dockerd is not None:
            self.dockerd.stop()
        else:
            from harness.runtime.node_host import release_host

            kill_processes(processes_of_run(self.run_id, self.registry.root))
            release_host(self.run_id)
        if self.docker_root:
            shutil.rmtree(self.docker_root, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)
