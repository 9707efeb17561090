"""A real node joined to the local control plane: containerd, runc (behind a wrapper that
drops the capabilities this machine cannot grant), the Debian CNI plugins, kubelet,
kube-proxy, then CoreDNS and a local-path storage class as Pods.

Everything runs inside a network and a mount namespace the harness creates and holds
(`node-netns`, a process that only sleeps). The host keeps its network untouched: the
node's bridge process (`harness.daemons.nsbridge`) carries the apiserver into the node
(on its advertised address, what the `kubernetes` Service's endpoints name) and the
apiserver into the node (its egress proxy: kubelet logs/exec/port-forward, Pods). The
kubelet's hard-coded paths under /var land in an overlay inside the node's mount
namespace, its cgroups in a `heracles-<run>` tree, and its global sysctls are recorded
and restored (`harness.runtime.node_host`), so a stop — or the reaper after a kill —
leaves the host as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.kube import (
    NODE_APISERVER_IP,
    SERVICE_CIDR,
    Kube,
    egress_socket,
)
from harness.backends.local.components.node import configs
from harness.backends.local.components.node.addons import STORAGE_CLASS, write_addons
from harness.backends.local.components.node.configs import NODE_NAME, NodePaths
from harness.clients import manifests
from harness.errors import HarnessError
from harness.images import NODE_IMAGES, ImageBuilder
from harness.images.recipes import PAUSE, RECIPES
from harness.progress import Reporter
from harness.runtime import node_host
from harness.runtime.pki import write_private
from harness.runtime.probes import http_ok
from harness.runtime.process import ManagedProcess, ProcessSpec
from harness.wait import eventually

__all__ = ["NODE_NAME", "STORAGE_CLASS", "Node"]


def _unix_socket_answers(path: Path) -> Any:
    def probe() -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(path))
                return True
        except OSError:
            return False
    return probe


def _pid_file_probe(path: Path, netns_differs: bool = False) -> Any:
    """Ready when the pid the process wrote is alive (and, for the holder, sits in a
    network namespace other than ours): a stale file from a dead run never passes."""
    def probe() -> bool:
        try:
            pid = int(path.read_text().split()[0])
            theirs = os.readlink(f"/proc/{pid}/ns/net")
        except (OSError, ValueError, IndexError):
            return False
        return not netns_differs or theirs != os.readlink("/proc/self/ns/net")
    return probe


class Node(Component):
    name = "node"
    requires = ("kube",)
    port_names = ("node.kubelet-healthz", "node.proxy-healthz")
    toolchain = ("kubernetes-node", "node-runtime", "image-tools", "coredns",
                 "local-path-provisioner", "cri-tools")

    @property
    def paths(self) -> NodePaths:
        return NodePaths(self.ctx.state.root / "node")

    @property
    def cgroup(self) -> str:
        return node_host.cgroup_name(self.ctx.run_id)

    @property
    def address(self) -> str:
        return f"{configs.NODE_IP}:10250"

    def endpoints(self) -> dict[str, str]:
        return {"node": NODE_NAME, "containerd": f"unix://{self.paths.containerd_socket}"}

    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise HarnessError("the real node needs root (namespaces, mounts, cgroups); "
                               "run as root or leave `node` out of --components")
        if not node_host.hierarchies():
            raise HarnessError("the real node needs cgroups mounted at /sys/fs/cgroup")
        # Unix socket paths end at 107 bytes: the deepest the node makes is the
        # kubelet's pod-resources socket (found in CI: "bind: invalid argument").
        deepest = self.paths.kubelet_root / "pod-resources" / "0123456789"
        for sock in (egress_socket(self.ctx.state.root), deepest):
            if len(str(sock)) > 107:
                raise HarnessError(
                    f"state directory {self.ctx.state.root} is too deep for the node's unix "
                    f"sockets ({sock}: {len(str(sock))} bytes > 107); choose a shorter "
                    "--state-dir")
        if self.ctx.state.root.resolve().is_relative_to("/var"):
            raise HarnessError("the node's state cannot live under /var: the node overlays "
                               f"/var in its mount namespace ({self.ctx.state.root})")

    # ---- files -------------------------------------------------------------------------
    def write_files(self) -> None:
        p = self.paths
        for d in (p.root, p.containerd_root, p.cni_conf, p.kubelet_root, p.pod_logs,
                  p.var_upper, p.volumes, p.addons):
            d.mkdir(parents=True, exist_ok=True)
        if not self._running("node-netns"):
            for d in p.runtime_dirs():  # nothing of a previous run survives in these
                shutil.rmtree(d, ignore_errors=True)
            p.holder_pid.unlink(missing_ok=True)
            p.bridge_ready.unlink(missing_ok=True)
            p.forwards.unlink(missing_ok=True)  # their ports went with the last run
        for d in p.runtime_dirs():
            d.mkdir(parents=True, exist_ok=True)
        from harness.runtime import runc_wrapper

        p.runc_wrapper.write_text(runc_wrapper.script(sys.executable))
        p.runc_wrapper.chmod(0o755)
        p.enter.write_text(configs.enter_script(p, self.cgroup))
        p.enter.chmod(0o755)
        p.containerd_config.write_text(configs.containerd_toml(p, self.cgroup, PAUSE))
        (p.cni_conf / "10-heracles.conflist").write_text(configs.cni_conflist(p))
        ca = self.ctx.pki.ca_cert
        p.config("kubelet.yaml").write_text(configs.kubelet_config(p, ca, self.cgroup))
        server = f"https://{NODE_APISERVER_IP}:{self.ctx.port('kube.apiserver')}"
        pki = self.ctx.pki
        for client, cn, org in (("kubelet", f"system:node:{NODE_NAME}", "system:nodes"),
                                ("kube-proxy", "system:kube-proxy", None)):
            pair = pki.pair(f"node-{client}")
            if not (pair.cert.exists() and pair.key.exists()):
                pki.issue(f"node-{client}", NODE_NAME, configs.NODE_IP, common_name=cn,
                          organization=org)
            write_private(p.config(f"{client}.kubeconfig"), configs.node_kubeconfig(
                server, ca, pair.cert, pair.key, cn).encode())
        p.config("kube-proxy.yaml").write_text(
            configs.kube_proxy_config(p.config("kube-proxy.kubeconfig")))

    def install(self) -> None:
        """Host preparation the kubelet needs before it runs: the run's cgroup tree, and
        the sysctls it will change recorded for restoring."""
        # The claim first: it is what tells this registry's reaper the cgroups are ours.
        node_host.acquire_sysctls(Path(self.ctx.registry.root), self.ctx.run_id)
        node_host.create_cgroups(self.ctx.run_id, children=("system", "runtime"))

    # ---- processes ---------------------------------------------------------------------
    def process_specs(self) -> list[ProcessSpec]:
        p = self.paths
        enter = [str(p.enter)]
        api_port = self.ctx.port("kube.apiserver")
        holder = self.spec(
            "node-netns",
            ["unshare", "--net", "--mount", "--propagation", "private", "--",
             "sh", "-c", configs.holder_script(p, NODE_APISERVER_IP, SERVICE_CIDR)],
            _pid_file_probe(p.holder_pid, netns_differs=True))
        bridge = self.spec(
            "node-bridge",
            [sys.executable, "-m", "harness.daemons.nsbridge",
             "--netns-pid-file", str(p.holder_pid),
             "--to-host", f"{NODE_APISERVER_IP}:{api_port}=127.0.0.1:{api_port}",
             "--from-host", f"127.0.0.1:{self.ctx.port('node.kubelet-healthz')}="
                            f"127.0.0.1:{configs.KUBELET_HEALTHZ}",
             "--from-host", f"127.0.0.1:{self.ctx.port('node.proxy-healthz')}="
                            f"127.0.0.1:{configs.PROXY_HEALTHZ}",
             "--egress", str(egress_socket(self.ctx.state.root)),
             "--forwards-file", str(p.forwards),
             "--ready-file", str(p.bridge_ready)],
            _pid_file_probe(p.bridge_ready))
        containerd = self.spec(
            "containerd",
            [*enter, self.bin("node-runtime", "containerd"), "--config",
             str(p.containerd_config)],
            _unix_socket_answers(p.containerd_socket))
        kubelet = self.spec(
            "kubelet",
            [*enter, self.bin("kubernetes-node", "kubelet"),
             f"--config={p.config('kubelet.yaml')}",
             f"--kubeconfig={p.config('kubelet.kubeconfig')}",
             f"--root-dir={p.kubelet_root}", f"--cert-dir={p.kubelet_root / 'pki'}",
             f"--node-ip={configs.NODE_IP}", f"--hostname-override={NODE_NAME}",
             f"--node-labels={'='.join(configs.NODE_LABEL)}", "--v=1"],
            http_ok(f"http://127.0.0.1:{self.ctx.port('node.kubelet-healthz')}/healthz"),
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        proxy = self.spec(
            "kube-proxy",
            [*enter, self.bin("kubernetes-node", "kube-proxy"),
             f"--config={p.config('kube-proxy.yaml')}", "--v=1"],
            http_ok(f"http://127.0.0.1:{self.ctx.port('node.proxy-healthz')}/healthz"),
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        return [holder, bridge, containerd, kubelet, proxy]

    def start(self, on_started: Callable[[ManagedProcess], None] | None = None) -> None:
        """As every component; except that a node whose namespace holder is gone is
        stopped whole first: what still runs sits in the old namespaces, and a new
        holder would split the node in two."""
        others = [p for p in self.processes() if p.name != "node-netns" and p.running()]
        if not self.process("node-netns").ready() and others:
            self.stop()
        try:
            super().start(on_started)
        except BaseException:
            self.stop()  # a node half-started leaves no container, cgroup or claim behind
            raise

    def _running(self, name: str) -> bool:
        try:
            return self.process(name).running()
        except KeyError:
            return False

    # ---- after start -------------------------------------------------------------------
    def configure(self) -> None:
        self.import_images(NODE_IMAGES)
        kube = self.ctx.require(Kube)
        self.wait_ready(kube)
        from harness.clients.kube import dynamic_client

        upstream = self.ctx.toolchain.file("local-path-provisioner", "local-path-storage.yaml")
        paths = write_addons(self.paths.addons, upstream, self.paths.volumes)
        dyn = dynamic_client(kube.api_client())
        docs = manifests.load(paths)
        manifests.validate(docs, dyn)
        manifests.apply(docs, dyn)
        self.wait_deployments(kube, [("kube-system", "coredns"),
                                     ("local-path-storage", "local-path-provisioner")])

    def ctr(self, *args: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [self.bin("node-runtime", "ctr"), "--address", str(self.paths.containerd_socket),
                "--namespace", "k8s.io", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise HarnessError(f"`ctr {' '.join(args)}` failed: {proc.stderr.strip()[-500:]}")
        return proc

    def crictl(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        endpoint = f"unix://{self.paths.containerd_socket}"
        argv = [self.bin("cri-tools", "crictl"), "--runtime-endpoint", endpoint,
                "--image-endpoint", endpoint, "--timeout", "30s", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise HarnessError(f"`crictl {' '.join(args)}` failed: {proc.stderr.strip()[-500:]}")
        return proc

    def images(self) -> dict[str, str]:
        """Image reference -> digest, as containerd's k8s.io namespace holds them."""
        out = {}
        for line in self.ctr("images", "ls").stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and not parts[0].startswith("sha256:"):
                out[parts[0]] = parts[2]
        return out

    def import_images(self, keys: tuple[str, ...] | list[str]) -> list[str]:
        """Build (cached) and import these images unless containerd holds the same
        digest already; returns the references imported."""
        builder = ImageBuilder(self.ctx.toolchain, self.ctx.settings.cache_dir,
                               Reporter(heartbeat=60))
        built = builder.build(list(keys))
        have = self.images()
        imported = []
        for image in built:
            if have.get(image.ref) == image.digest:
                continue
            self.ctr("images", "import", image.archive)
            imported.append(image.ref)
        return imported

    def expose(self, namespace: str, service: str, port: int) -> str:
        """A Service of the node reachable from the host: `127.0.0.1:<free port>` on the
        host, carried by the bridge to the Service's ClusterIP inside the node (so
        kube-proxy picks a ready endpoint, as for any client). Idempotent; returns the
        host address."""
        from kubernetes import client

        kube = self.ctx.require(Kube)
        svc = client.CoreV1Api(kube.api_client()).read_namespaced_service(service, namespace)
        cluster_ip = svc.spec.cluster_ip if svc.spec else None
        if not cluster_ip or cluster_ip == "None":
            raise HarnessError(f"service {namespace}/{service} has no ClusterIP to forward to")
        target = f"{cluster_ip}:{port}"
        for spec in self._forwards():
            if not spec.startswith("node:") and spec.endswith(f"={target}"):
                return spec.split("=", 1)[0]
        [host_port] = self.ctx.registry.ports.allocate(self.ctx.run_id, 1)
        listen = f"127.0.0.1:{host_port}"
        self._add_forward(f"{listen}={target}", f"{namespace}/{service}")
        return listen

    def publish(self, namespace: str, service: str, host_port: int, port: int) -> str:
        """A service of the host (127.0.0.1:host_port: the harness's Git server, its
        alert receiver) as an in-cluster Service `service.namespace.svc.cluster.local:
        port` — a Service without selector whose endpoint is the apiserver's address in
        the node, where the bridge listens and carries it to the host. Idempotent;
        returns the in-cluster URL authority."""
        from harness.clients.kube import publish_service

        inside = f"{NODE_APISERVER_IP}:{host_port}"
        if not any(s == f"node:{inside}=127.0.0.1:{host_port}" for s in self._forwards()):
            self._add_forward(f"node:{inside}=127.0.0.1:{host_port}",
                              f"{namespace}/{service}")
        return publish_service(self.ctx.require(Kube).api_client(), namespace, service,
                               NODE_APISERVER_IP, port, host_port)

    def _add_forward(self, spec: str, what: str) -> None:
        """One more forward in the bridge's file, applied (SIGHUP) before returning."""
        from harness.daemons.nsbridge import add_forward

        bridge = self.process("node-bridge")
        if bridge.pid is None or not bridge.running():
            raise HarnessError("the node's bridge is not running; run `harness up`")
        add_forward(self.paths.forwards, bridge.pid, spec, what)

    def _forwards(self) -> list[str]:
        try:
            return list(json.loads(self.paths.forwards.read_text()))
        except (OSError, ValueError):
            return []

    def wait_ready(self, kube: Kube, timeout: float = 120.0) -> None:
        from kubernetes import client

        api = client.CoreV1Api(kube.api_client())

        def ready() -> bool:
            node = api.read_node(NODE_NAME)
            conds = {c.type: c.status for c in ((node.status and node.status.conditions) or [])}
            if conds.get("Ready") != "True":
                raise AssertionError(f"node {NODE_NAME} not Ready: {conds}")
            return True

        eventually(ready, timeout=timeout, error=HarnessError,
                   retry_on=(AssertionError, client.ApiException),
                   description=f"the kubelet registers {NODE_NAME} and it becomes Ready")

    def wait_deployments(self, kube: Kube, names: list[tuple[str, str]],
                         timeout: float = 120.0) -> None:
        from kubernetes import client

        apps = client.AppsV1Api(kube.api_client())

        def available() -> bool:
            for ns, name in names:
                dep = apps.read_namespaced_deployment(name, ns)
                available = dep.status.available_replicas if dep.status else 0
                if (available or 0) < ((dep.spec.replicas if dep.spec else None) or 1):
                    raise AssertionError(f"deployment {ns}/{name} not available yet")
            return True

        eventually(available, timeout=timeout, error=HarnessError,
                   retry_on=(AssertionError, client.ApiException),
                   description="the node's addons (CoreDNS, local-path) become available")

    # ---- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        """Pods first (their mounts and network go with them), then the node's processes,
        then whatever is left in its cgroups, its cgroups and its sysctl changes."""
        if self._running("containerd") and self._running("kubelet"):
            self.process("kubelet").stop()
        if self._running("containerd"):
            try:
                self.crictl("rmp", "--all", "--force", timeout=60, check=False)
            except (subprocess.TimeoutExpired, HarnessError):
                pass
        super().stop()
        self.release_host()

    def kill(self) -> None:
        super().kill()
        self.release_host()

    def release_host(self) -> dict[str, object]:
        undone = node_host.release_host(self.ctx.run_id)
        # Nothing of the stopped node is meaningful to a later one (its namespaces are
        # gone); images and volumes are kept.
        for d in self.paths.runtime_dirs():
            shutil.rmtree(d, ignore_errors=True)
        return undone

    def status_details(self) -> dict[str, Any]:
        return {"node": NODE_NAME, "cgroup": self.cgroup,
                "storage_class": STORAGE_CLASS,
                "images": sorted(RECIPES[k].ref for k in NODE_IMAGES)}
