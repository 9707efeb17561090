"""What the real node runs as Pods once it is Ready: cluster DNS (CoreDNS) and a storage
class that provisions volumes on the node (rancher's local-path-provisioner, the one
kind ships), each pinned to the node, from the images built here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.backends.local.components.node.configs import (
    CLUSTER_DNS,
    CLUSTER_DOMAIN,
    NODE_LABEL,
    NODE_TAINT,
)
from harness.images.recipes import BUSYBOX, COREDNS, LOCAL_PATH

STORAGE_CLASS = "local-path"

# No `forward`: names outside the cluster fail here instead of leaving the machine (and
# so no `loop` either, which probes the upstream it would forward to).
COREFILE = f""".:1053 {{
    errors
    health :8080 {{
        lameduck 2s
    }}
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    prometheus :9153
    cache 5
    reload
}}
"""


def on_real_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A Pod spec pinned to the real node: its label, and the toleration of its taint."""
    pod_spec.setdefault("nodeSelector", {})[NODE_LABEL[0]] = NODE_LABEL[1]
    pod_spec.setdefault("tolerations", []).append(
        {"key": NODE_TAINT[0], "operator": "Exists", "effect": NODE_TAINT[2]})
    return pod_spec


def coredns() -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    rules = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]}]
    # Unprivileged (nobody) on 1053; the Service keeps the port every resolver asks: 53.
    container = {
        "name": "coredns", "image": COREDNS, "imagePullPolicy": "Never",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [{"name": "dns", "containerPort": 1053, "protocol": "UDP"},
                  {"name": "dns-tcp", "containerPort": 1053, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                          "periodSeconds": 10, "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                           "periodSeconds": 1},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                      "limits": {"memory": "170Mi"}},
        # NET_BIND_SERVICE kept, as kubeadm's CoreDNS does: the image (as upstream's)
        # gives /coredns that file capability, and execve refuses a file capability the
        # bounding set lacks (with `drop: ALL` alone the container cannot start)
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 65534,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "coredns", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns",
                       "namespace": "kube-system"}]},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "coredns", "namespace": "kube-system"},
         "data": {"Corefile": COREFILE}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": on_real_node({
                      "serviceAccountName": "coredns", "dnsPolicy": "Default",
                      "priorityClassName": "system-cluster-critical",
                      "containers": [container],
                      "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                  })}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": "kube-system",
                      "labels": {**labels, "kubernetes.io/name": "CoreDNS"}},
         "spec": {"clusterIP": CLUSTER_DNS, "selector": labels,
                  "ports": [{"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "targetPort": 1053,
                             "protocol": "TCP"},
                            {"name": "metrics", "port": 9153, "protocol": "TCP"}]}},
    ]


def local_path(upstream: Path, volumes: Path) -> list[dict[str, Any]]:
    """The provisioner's own manifest (deploy/local-path-storage.yaml of its module),
    adapted: our images, pinned to the real node, volumes under the node's state."""
    docs = [d for d in yaml.safe_load_all(upstream.read_text()) if d]
    for doc in docs:
        kind = doc.get("kind")
        if kind == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            on_real_node(spec)
            for c in spec["containers"]:
                c["image"], c["imagePullPolicy"] = LOCAL_PATH, "Never"
                c["command"] = [a for a in c["command"] if a != "--debug"]
        elif kind == "ConfigMap" and doc["metadata"]["name"] == "local-path-config":
            data = doc["data"]
            data["config.json"] = json.dumps({"nodePathMap": [
                {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes)]}]})
            helper = yaml.safe_load(data["helperPod.yaml"])
            on_real_node(helper["spec"])
            for c in helper["spec"]["containers"]:
                c["image"], c["imagePullPolicy"] = BUSYBOX, "Never"
            data["helperPod.yaml"] = yaml.safe_dump(helper, sort_keys=False)
    return docs


def write_addons(out: Path, local_path_upstream: Path, volumes: Path) -> list[Path]:
    """The addons as files (what `harness apply` and a reader of the state see)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"coredns.yaml": coredns(),
             "local-path-storage.yaml": local_path(local_path_upstream, volumes)}
    paths = []
    for name, docs in files.items():
        path = out / name
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        paths.append(path)
    return paths
