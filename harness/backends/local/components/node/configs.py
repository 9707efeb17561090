"""The real node's configuration files: the holder of its namespaces, containerd, CNI,
kubelet and kube-proxy. Every path is under the node's state directory; nothing names
the host's /etc, /var/lib or /opt (and what the kubelet hard-codes under /var lands in
an overlay inside the node's mount namespace)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

NODE_NAME = "heracles-node"
NODE_IP = "172.30.0.2"
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
CLUSTER_DNS = "10.0.0.10"  # in the apiserver's service range (components/kube.py)
CLUSTER_DOMAIN = "cluster.local"
# Scheduling onto the real node is explicit: its label, and a taint only Pods that ask
# for it tolerate, so the KWOK nodes keep every other Pod (and the fast profiles fast).
NODE_LABEL = ("heracles.dev/node", "real")
NODE_TAINT = ("heracles.dev/real-node", "true", "NoSchedule")
KUBELET_HEALTHZ = 10248
PROXY_HEALTHZ = 10256


class NodePaths:
    """Where everything of the node lives, under `<state>/node`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.holder_pid = root / "holder.pid"
        self.bridge_ready = root / "bridge.ready"
        self.enter = root / "enter.sh"
        self.runc_wrapper = root / "runc"
        self.containerd_config = root / "containerd.toml"
        self.containerd_socket = root / "containerd.sock"
        self.containerd_root = root / "containerd" / "root"
        self.containerd_state = root / "containerd" / "state"
        self.cni_conf = root / "cni" / "net.d"
        self.cni_data = root / "cni" / "data"
        self.kubelet_root = root / "kubelet"
        self.pod_logs = root / "pod-logs"
        self.var_upper = root / "var" / "upper"
        self.var_work = root / "var" / "work"
        self.volumes = root / "volumes"
        self.addons = root / "addons"
        self.forwards = root / "forwards.json"

    def config(self, name: str) -> Path:
        return self.root / name

    def runtime_dirs(self) -> list[Path]:
        """State that nothing survives a stop (tasks, netns files, IP leases): emptied
        before each start so a killed run's leftovers never confuse the next."""
        return [self.containerd_state, self.cni_data, self.var_work]


def holder_script(paths: NodePaths, apiserver_ip: str, service_cidr: str) -> str:
    """What the namespace holder runs once inside its fresh network and mount
    namespaces, before it sleeps holding them."""
    return f"""set -e
mount --make-rshared /
mount -t tmpfs -o mode=0755 heracles-node-run /run
mount -t overlay heracles-node-var \
  -o lowerdir=/var,upperdir={paths.var_upper},workdir={paths.var_work} /var
ip link set lo up
ip addr add {apiserver_ip}/32 dev lo
ip addr add {NODE_IP}/32 dev lo
# Connections made on the node itself (the bridge's forwards to a ClusterIP) need a route
# for kube-proxy's OUTPUT DNAT to act on; nothing else leaves through it.
ip route add {service_cidr} dev lo
echo 1 > /proc/sys/net/ipv4/ip_forward
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
fi
echo $$ > {paths.holder_pid}
exec sleep infinity
"""


def enter_script(paths: NodePaths, cgroup: str) -> str:
    """Runs a program inside the node: in the run's `system` cgroup (so whatever it
    spawns, shims included, is found there) and the holder's namespaces."""
    return f"""#!/bin/sh
# heracles-harness: run "$@" inside the real node's namespaces and cgroups.
set -e
holder=$(cat {paths.holder_pid})
for procs in /sys/fs/cgroup/*/{cgroup}/system/cgroup.procs; do
  [ -e "$procs" ] && echo $$ > "$procs" 2>/dev/null || true
done
exec nsenter --net=/proc/$holder/ns/net --mount=/proc/$holder/ns/mnt -- "$@"
"""


def containerd_toml(paths: NodePaths, cgroup: str, sandbox_image: str) -> str:
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
oom_score = 0

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.root / 'containerd-ttrpc.sock'}"

[debug]
  level = "info"

[metrics]
  address = ""

[cgroup]
  path = "/{cgroup}/runtime"

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.root / 'containerd' / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # The bounding set has no CAP_SYS_RESOURCE: raising a process's oom_score_adj needs it.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{paths.runc_wrapper}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{paths.cni_conf}"
    max_conf_num = 1
"""


def cni_conflist(paths: NodePaths) -> str:
    return json.dumps({
        "cniVersion": "0.4.0", "name": "heracles",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(paths.cni_data),
                      "ranges": [[{"subnet": POD_SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ]}, indent=2)


def kubelet_config(paths: NodePaths, ca: Path, cgroup: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": NODE_IP, "port": 10250, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ,
        # cgroup v1 here: 1.34 refuses it unless told, and only cgroupfs is possible
        # without systemd as PID 1.
        "cgroupDriver": "cgroupfs", "failCgroupV1": False, "cgroupRoot": f"/{cgroup}",
        "cgroupsPerQOS": True, "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [CLUSTER_DNS], "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",  # Pods resolve the cluster only: no upstream to leak to
        "podLogsDir": str(paths.pod_logs),
        # Image GC would delete images no registry can give back (containerd 1.6 has no
        # pinned-image label): only at a full disk.
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%"},
        "registerWithTaints": [{"key": NODE_TAINT[0], "value": NODE_TAINT[1],
                                "effect": NODE_TAINT[2]}],
        "serializeImagePulls": False,
        "localStorageCapacityIsolation": False,
        "syncFrequency": "5s", "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
    }, sort_keys=False)


def kube_proxy_config(kubeconfig: Path) -> str:
    return yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": "iptables", "clusterCIDR": CLUSTER_CIDR, "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{PROXY_HEALTHZ}",
        "metricsBindAddress": "127.0.0.1:10249",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        # Global conntrack settings are the host's: leave them alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "5s", "minSyncPeriod": "0s"},
    }, sort_keys=False)


def node_kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    """A kubeconfig for the node's own clients: the apiserver as the node sees it (its
    advertised address), checked against the name its certificate carries."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "heracles", "cluster": {
            "server": server, "certificate-authority": str(ca),
            "tls-server-name": "kubernetes"}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert),
                                          "client-key": str(key)}}],
        "contexts": [{"name": "heracles", "context": {"cluster": "heracles", "user": user}}],
        "current-context": "heracles",
    })
