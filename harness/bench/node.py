"""The real node's figures (issue 14): image builds cold and cached, the node's start,
a Pod from create to Ready, and the memory the node adds — its processes, containerd's
shims and the containers in its cgroups (CoreDNS, local-path), on top of `kube`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from harness.bench.figures import Figure
from harness.bench.runners import SETTLE_SECONDS, Log, MiB, temporary_environment
from harness.images import ImageBuilder
from harness.progress import Reporter
from harness.runtime import node_host
from harness.settings import Settings
from harness.toolchain import Toolchain

if TYPE_CHECKING:
    from harness.backends.local.components.node import Node
    from harness.backends.local.environment import LocalEnvironment

PODS_PER_RUN = 5


def image_build_seconds(toolchain: Toolchain) -> tuple[float, float]:
    """Every image built from nothing into a throw-away cache, then again (cached)."""
    with tempfile.TemporaryDirectory(prefix="heracles-bench-images-") as tmp:
        builder = ImageBuilder(toolchain, Path(tmp), Reporter(heartbeat=600))
        t0 = time.monotonic()
        builder.build()
        cold = time.monotonic() - t0
        t0 = time.monotonic()
        builder.build()
        return cold, time.monotonic() - t0


def node_rss_mib(env: LocalEnvironment) -> float:
    """RSS of the node's own processes, and of everything in its cgroups (shims,
    containers), counted once each."""
    node: Node = env.component("node")  # type: ignore[assignment]
    pids = set(node_host.cgroup_pids(env.record.run_id))
    return rss_mib(pids, [p.pid for p in node.processes() if p.pid is not None])


def rss_mib(pids: set[int], parents: list[int]) -> float:
    """RSS of `pids` and of `parents` with all their descendants, each counted once."""
    pids = set(pids)
    for pid in parents:
        pids.add(pid)
        try:
            pids.update(c.pid for c in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / MiB


def pod_create_to_ready(env: LocalEnvironment, count: int) -> list[float]:
    """Seconds from `create` to the Ready condition, one busybox Pod at a time."""
    from kubernetes import client

    from harness.backends.local.components.node.addons import on_real_node
    from harness.images.recipes import BUSYBOX
    from harness.wait import eventually

    kube = env.kube_client()
    ns = "bench-pods"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    samples = []
    for i in range(count):
        pod: Any = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
               "spec": on_real_node({"terminationGracePeriodSeconds": 0, "containers": [{
                   "name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                   "command": ["sleep", "3600"]}]})}
        t0 = time.monotonic()
        kube.core.create_namespaced_pod(ns, pod)

        def ready(name: str = f"p{i}") -> bool:
            status = kube.core.read_namespaced_pod(name, ns).status
            conds = (status.conditions if status else None) or []
            return any(c.type == "Ready" and c.status == "True" for c in conds)

        eventually(ready, timeout=60, interval=0.05, description=f"bench Pod p{i} Ready")
        samples.append(time.monotonic() - t0)
    return samples


def node_figures(settings: Settings, toolchain: Toolchain, repeat: int,
                 log: Log) -> tuple[Figure, ...]:
    log("node: images, cold then cached")
    cold, cached = image_build_seconds(toolchain)
    starts: list[float] = []
    totals: list[float] = []
    rss: list[float] = []
    pods: list[float] = []
    for i in range(repeat):
        log(f"node run {i + 1}/{repeat}: kube + node")
        with temporary_environment(settings, components=["kube", "node"],
                                   toolchain=toolchain) as env:
            starts.append(env.timings["node"])
            totals.append(env.timings["total"])
            pods += pod_create_to_ready(env, PODS_PER_RUN)
            time.sleep(SETTLE_SECONDS)
            rss.append(node_rss_mib(env))
    return (
        Figure("node_ready", "s", starts,
               note="real node: namespaces, containerd, kubelet, kube-proxy, CoreDNS and "
                    "local-path Ready (images cached)"),
        Figure("kube_and_node_start", "s", totals, note="harness up --components kube,node"),
        Figure("pod_create_to_ready", "s", pods,
               note=f"busybox Pod, create -> Ready ({PODS_PER_RUN} per run)"),
        Figure("node_rss", "MiB", rss,
               note="RSS the node adds (its processes, shims, CoreDNS, local-path)"),
        Figure("image_build_cold", "s", [cold], note="all 10 images from an empty cache"),
        Figure("image_build_cached", "s", [cached], note="all 10 images, cache hits"),
    )
