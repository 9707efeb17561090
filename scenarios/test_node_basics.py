"""The Kubernetes basics on the real node (issue 14): Pods from images built here, run by
containerd and runc, networked by the CNI plugins, served by kube-proxy and CoreDNS —
and a teardown that leaves the host exactly as it found it.

One environment (`kube,node`) for the module; every test works in a namespace of its
own. The last tests take the node down and check the host, then kill a node's owner and
check the reaper.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness import eventually
from harness.backends.local.components.node import NODE_NAME, STORAGE_CLASS, Node
from harness.backends.local.components.node.addons import on_real_node
from harness.images import ImageBuilder
from harness.images.recipes import BUSYBOX
from harness.runtime import node_host
from harness.runtime.registry import RunRegistry, processes_of_run
from harness.testing import KubeClient

pytestmark = [pytest.mark.scenario, pytest.mark.slow, pytest.mark.real_node]


class NodeEnv:
    def __init__(self, env: Any, before: dict[str, list[str]], claims: list[str]) -> None:
        self.env = env
        self.before = before
        self.claims = claims  # nodes of other sessions holding the sysctls at `before`
        self.kube: KubeClient = env.kube_client()
        self.node: Node = env.component("node")


@pytest.fixture(scope="module")
def node_env(environment_factory: Any) -> Iterator[NodeEnv]:
    if os.geteuid() != 0:
        pytest.skip("the real node needs root")
    before, claims = node_host.host_footprint(), node_host.sysctl_runs()
    env = environment_factory.up("node", components=("kube", "node"))
    try:
        yield NodeEnv(env, before, claims)
    finally:
        environment_factory.down(env)


@pytest.fixture
def ns(node_env: NodeEnv, request: pytest.FixtureRequest) -> Iterator[str]:
    full = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())
    name = f"{full[:40].strip('-')}-{hashlib.sha1(full.encode()).hexdigest()[:8]}"
    node_env.kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name)))
    yield name
    node_env.kube.core.delete_namespace(name)


def busybox_pod(name: str, command: str, labels: dict[str, str] | None = None,
                **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                 "command": ["sh", "-c", command]}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": on_real_node({"containers": [container],
                                  "terminationGracePeriodSeconds": 1, **spec})}


def apply(kube: KubeClient, ns: str, *objects: dict[str, Any]) -> None:
    kube.kubectl("apply", "-n", ns, "-f", "-",
                 input="\n---\n".join(json.dumps(o) for o in objects))


def wait_ready(kube: KubeClient, ns: str, selector: str, count: int = 1,
               timeout: float = 90) -> list[client.V1Pod]:
    def ready() -> list[client.V1Pod]:
        pods = [p for p in kube.core.list_namespaced_pod(ns, label_selector=selector).items
                if p.metadata.deletion_timestamp is None]
        good = [p for p in pods if any(c.type == "Ready" and c.status == "True"
                                       for c in (p.status.conditions or []))]
        if len(good) < count:
            raise AssertionError(f"{len(good)}/{count} Ready of {selector}: "
                                 f"{[(p.metadata.name, p.status.phase) for p in pods]}")
        return good

    return eventually(ready, timeout=timeout, retry_on=(AssertionError,),
                      description=f"{count} Pod(s) {selector} Ready on the real node")


# ---- the node ------------------------------------------------------------------------

def test_node_is_ready_beside_kwok_with_its_taint_and_label(node_env: NodeEnv) -> None:
    node = node_env.kube.core.read_node(NODE_NAME)
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    assert node.metadata.labels["heracles.dev/node"] == "real"
    assert [(t.key, t.effect) for t in node.spec.taints or []] == [
        ("heracles.dev/real-node", "NoSchedule")]
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.6")
    kinds = {n.metadata.name for n in node_env.kube.core.list_node().items}
    assert any(n.startswith("kwok-node-") for n in kinds), kinds


def test_pod_from_a_locally_built_image_becomes_running_and_ready(
        node_env: NodeEnv, ns: str) -> None:
    apply(node_env.kube, ns, busybox_pod("hello", "echo started; sleep 3600"))
    [pod] = wait_ready(node_env.kube, ns, "app=hello")
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.phase == "Running"
    built = {i.ref: i for i in ImageBuilder(node_env.env.toolchain,
                                            node_env.env.settings.cache_dir).build(["busybox"])}
    # The running container is the image built here, byte for byte (same image id).
    assert pod.status.container_statuses[0].image_id == built[BUSYBOX].image_id


def test_kubectl_logs_exec_and_port_forward(node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    apply(kube, ns, busybox_pod(
        "web", "echo serving; mkdir -p /www; echo hello-from-the-pod > /www/index.html; "
               "exec httpd -f -p 8080 -h /www"))
    wait_ready(kube, ns, "app=web")
    eventually(lambda: "serving" in kube.kubectl("logs", "-n", ns, "web").stdout,
               timeout=30, description="kubectl logs shows the container's output")
    out = kube.kubectl("exec", "-n", ns, "web", "--", "sh", "-c", "id -u; hostname").stdout
    assert out.split() == ["0", "web"]
    pf = subprocess.Popen([kube.kubectl_path, "--kubeconfig", kube.kubeconfig,
                           "port-forward", "-n", ns, "--address", "127.0.0.1", "pod/web",
                           ":8080"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        assert pf.stdout is not None
        line = pf.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/",
                                    timeout=10) as resp:
            assert resp.read().decode().strip() == "hello-from-the-pod"
    finally:
        pf.terminate()
        pf.wait(10)


def test_a_deployment_replaces_a_deleted_pod(node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    template = busybox_pod("app", "sleep 3600")
    apply(kube, ns, {"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "app"},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                              "template": {"metadata": template["metadata"],
                                           "spec": template["spec"]}}})
    [first] = wait_ready(kube, ns, "app=app")
    kube.core.delete_namespaced_pod(first.metadata.name, ns)

    def replaced() -> list[client.V1Pod]:
        pods = wait_ready(kube, ns, "app=app", timeout=5)
        if first.metadata.uid in {p.metadata.uid for p in pods}:
            raise AssertionError("the deleted Pod is still the one Ready")
        return pods

    [second] = eventually(replaced, timeout=90, retry_on=(AssertionError,),
                          description="the ReplicaSet starts a new Pod on the real node")
    assert second.spec.node_name == NODE_NAME
    assert second.status.pod_ip != "" and second.metadata.name != first.metadata.name


def _web_service(kube: KubeClient, ns: str, name: str,
                 page_of: str = "hostname") -> dict[str, Any]:
    """A Service `name` on port 80; returns a Pod serving its hostname on 8080 for it."""
    template = busybox_pod(
        name, f"mkdir -p /www; {page_of} > /www/index.html; exec httpd -f -p 8080 -h /www",
        labels={"app": name})
    apply(kube, ns, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                     "spec": {"selector": {"app": name},
                              "ports": [{"port": 80, "targetPort": 8080}]}})
    return template


def test_a_clusterip_service_is_reached_by_its_dns_name(node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    server = _web_service(kube, ns, "web")
    apply(kube, ns, server, busybox_pod("client", "sleep 3600"))
    wait_ready(kube, ns, "app in (web, client)", count=2)
    fqdn = f"web.{ns}.svc.cluster.local"

    def fetch() -> str:
        # (busybox 1.35's `wget -T` crashes: the applet `timeout` bounds it instead)
        out = kube.kubectl("exec", "-n", ns, "client", "--", "timeout", "5", "wget", "-qO-",
                           f"http://{fqdn}/", check=False)
        if out.returncode != 0:
            raise AssertionError(out.stderr.strip())
        return out.stdout.strip()

    assert eventually(fetch, timeout=60, retry_on=(AssertionError,),
                      description=f"the client Pod reaches {fqdn}") == "web"
    resolved = kube.kubectl("exec", "-n", ns, "client", "--", "nslookup", fqdn).stdout
    svc_ip = kube.core.read_namespaced_service("web", ns).spec.cluster_ip
    assert svc_ip in resolved


def test_a_chosen_service_is_reached_from_the_host_on_loopback(
        node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    apply(kube, ns, _web_service(kube, ns, "web"))
    wait_ready(kube, ns, "app=web")
    address = node_env.node.expose(ns, "web", 80)
    assert address.startswith("127.0.0.1:")
    assert node_env.node.expose(ns, "web", 80) == address  # idempotent

    def fetch() -> str:
        with urllib.request.urlopen(f"http://{address}/", timeout=5) as resp:
            return str(resp.read().decode().strip())

    assert eventually(fetch, timeout=30, retry_on=(OSError,),
                      description=f"the host reaches {ns}/web at {address}") == "web"


def test_the_running_kubelet_never_garbage_collects_images(node_env: NodeEnv) -> None:
    """containerd 1.6 cannot pin the pause image: the kubelet's image GC is held off."""
    configz = json.loads(node_env.kube.kubectl(
        "get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/configz").stdout)
    cfg = configz["kubeletconfig"]
    assert cfg["imageGCHighThresholdPercent"] == 100
    images = node_env.node.images()
    assert "registry.k8s.io/pause:3.10.1" in images


def test_a_pvc_binds_and_its_data_survives_the_pod_being_rescheduled(
        node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    apply(kube, ns, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"],
                              "storageClassName": STORAGE_CLASS,
                              "resources": {"requests": {"storage": "64Mi"}}}})
    volume = {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
              "container": {"volumeMounts": [{"name": "data", "mountPath": "/data"}]}}
    apply(kube, ns, busybox_pod("writer", "echo kept-across-pods > /data/file; sleep 3600",
                                **json.loads(json.dumps(volume))))
    wait_ready(kube, ns, "app=writer", timeout=120)
    pvc = kube.core.read_namespaced_persistent_volume_claim("data", ns)
    assert pvc.status.phase == "Bound"
    pv = kube.core.read_persistent_volume(pvc.spec.volume_name)
    host_dir = Path(pv.spec.host_path.path if pv.spec.host_path else pv.spec.local.path)
    assert host_dir.is_relative_to(node_env.node.paths.volumes)
    kube.core.delete_namespaced_pod("writer", ns)
    eventually(lambda: kube.absent(kube.core.read_namespaced_pod, "writer", ns),
               timeout=60, description="the writer Pod is gone")
    apply(kube, ns, busybox_pod("reader", "cat /data/file; sleep 3600",
                                **json.loads(json.dumps(volume))))
    wait_ready(kube, ns, "app=reader")
    eventually(lambda: "kept-across-pods" in kube.kubectl("logs", "-n", ns, "reader").stdout,
               timeout=30, description="the new Pod reads what the old one wrote")


def test_a_readiness_probe_keeps_an_unready_pod_out_of_the_service(
        node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    _web_service(kube, ns, "web")
    probe = {"readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                "periodSeconds": 1}}
    ready_cmd = "touch /tmp/ready; hostname > /www/index.html"
    serve = "; exec httpd -f -p 8080 -h /www"
    apply(kube, ns,
          busybox_pod("ready", f"mkdir -p /www; {ready_cmd}{serve}", labels={"app": "web"},
                      container=probe),
          busybox_pod("unready", f"mkdir -p /www; hostname > /www/index.html{serve}",
                      labels={"app": "web"}, container=probe),
          busybox_pod("client", "sleep 3600"))
    wait_ready(kube, ns, "app=client")
    wait_ready(kube, ns, "app=web", count=1)

    def endpoints() -> set[str]:
        slices = kube.kubectl("get", "endpointslices", "-n", ns, "-l",
                              "kubernetes.io/service-name=web", "-o", "json").stdout
        return {ep["targetRef"]["name"] for s in json.loads(slices)["items"]
                for ep in s.get("endpoints") or []
                if ep.get("conditions", {}).get("ready")}

    eventually(lambda: endpoints() == {"ready"}, timeout=30,
               description="only the ready Pod is an endpoint")
    answers = {kube.kubectl("exec", "-n", ns, "client", "--", "timeout", "5", "wget",
                            "-qO-", "http://web/").stdout.strip() for _ in range(8)}
    assert answers == {"ready"}
    kube.kubectl("exec", "-n", ns, "unready", "--", "touch", "/tmp/ready")
    eventually(lambda: endpoints() == {"ready", "unready"}, timeout=30,
               description="once its probe passes, the second Pod joins the Service")


def test_a_pods_service_account_token_passes_token_review(node_env: NodeEnv, ns: str) -> None:
    kube = node_env.kube
    apply(kube, ns, busybox_pod("holder", "sleep 3600"))
    wait_ready(kube, ns, "app=holder")
    token = kube.kubectl("exec", "-n", ns, "holder", "--", "cat",
                         "/var/run/secrets/kubernetes.io/serviceaccount/token").stdout.strip()
    review = client.AuthenticationV1Api(kube.core.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{ns}:default"
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["kubernetes.io"]["pod"]["name"] == "holder"
    assert claims["kubernetes.io"]["node"]["name"] == NODE_NAME


# ---- the platform's images ----------------------------------------------------------

VERSIONS = {
    # image key: (command run as the Pod's container, what its output must contain)
    # through the upstream entrypoint the Vault chart's server command calls
    "openbao": (["/usr/local/bin/docker-entrypoint.sh", "vault", "version"],
                "OpenBao v2.7.2"),
    "external-secrets": (["/bin/external-secrets", "--help"], "enable-leader-election"),
    # /bin/cp as the chart's copyutil calls it (busybox sh would run its own applet)
    "argocd": (["sh", "-c", "/bin/cp --update=none /usr/local/bin/argocd /tmp/cmp && "
                "/bin/cp --update=none /bin/sh /tmp/cmp && cmp /tmp/cmp /usr/local/bin/argocd && "
                "argocd-repo-server --help >/dev/null && argocd version "
                "--client --short && git --version && helm version --short && "
                "kustomize version && gpg --version | head -1"],
               "v3.2.11"),
    "redis": (["redis-server", "--version"], "v=7.0.15"),
    "prometheus": (["prometheus", "--version"], "version 2.42.0"),
    "alertmanager": (["alertmanager", "--version"], "version 0.25.0"),
    "coredns": (["/coredns", "-version"], "CoreDNS-1.12.1"),
    "local-path-provisioner": (["local-path-provisioner", "--version"], "v0.0.30"),
}


@pytest.mark.parametrize("key", sorted(VERSIONS))
def test_each_platform_image_runs_its_program_on_the_node(
        node_env: NodeEnv, ns: str, key: str) -> None:
    from harness.images import RECIPES

    node_env.node.import_images([key])
    command, expect = VERSIONS[key]
    name = key.replace("_", "-")
    pod = busybox_pod(name, "", restartPolicy="Never")
    pod["spec"]["containers"][0].update(image=RECIPES[key].ref, command=command)
    apply(node_env.kube, ns, pod)

    def finished() -> str:
        phase = node_env.kube.core.read_namespaced_pod(name, ns).status.phase
        if phase not in ("Succeeded", "Failed"):
            raise AssertionError(f"phase {phase}")
        return str(phase)

    phase = eventually(finished, timeout=90, retry_on=(AssertionError,),
                       description=f"the {key} Pod runs to completion")
    logs = node_env.kube.kubectl("logs", "-n", ns, name).stdout
    assert phase == "Succeeded", logs
    assert expect in logs
    if key == "argocd":  # what the repo-server shells out to is in the image, and runs
        assert "git version 2." in logs and "v3.18.4" in logs and "v5.7.1" in logs


def test_the_runbooks_vault_status_works_inside_the_openbao_pod(
        node_env: NodeEnv, ns: str) -> None:
    """`kubectl exec ... -- vault status`: the name the runbook types, inside the Pod."""
    from harness.images.recipes import OPENBAO

    node_env.node.import_images(["openbao"])
    pod = busybox_pod("vault-0", "", container={
        "image": OPENBAO, "command": ["bao", "server", "-dev",
                                      "-dev-listen-address=127.0.0.1:8200"],
        "env": [{"name": "VAULT_ADDR", "value": "http://127.0.0.1:8200"},
                {"name": "BAO_ADDR", "value": "http://127.0.0.1:8200"}]})
    apply(node_env.kube, ns, pod)
    wait_ready(node_env.kube, ns, "app=vault-0")

    def status() -> str:
        out = node_env.kube.kubectl("exec", "-n", ns, "vault-0", "--", "vault", "status",
                                    check=False)
        if out.returncode != 0:
            raise AssertionError(out.stderr or out.stdout)
        return out.stdout

    out = eventually(status, timeout=60, retry_on=(AssertionError,),
                     description="vault status answers inside the Pod")
    assert re.search(r"Sealed\s+false", out), out
    assert "2.7.2" in out


def test_zy_up_repairs_a_node_whose_namespace_holder_was_killed(
        node_env: NodeEnv, ns: str) -> None:
    """The holder gone, what still runs sits in namespaces nothing holds for the next
    start: `up` stops the node whole and starts it again, and Pods run again."""
    env, node = node_env.env, node_env.node
    holder = node.process("node-netns")
    holder.kill()
    assert not node.ready()
    env.up(["kube", "node"], mode="session")
    node_env.node = env.component("node")  # type: ignore[assignment]  # rebuilt by up
    assert node_env.node.ready()
    apply(node_env.kube, ns, busybox_pod("after", "sleep 3600"))
    wait_ready(node_env.kube, ns, "app=after")
    coredns = wait_ready(node_env.kube, "kube-system", "k8s-app=kube-dns")
    assert coredns[0].spec.node_name == NODE_NAME


# ---- teardown, then a killed run -----------------------------------------------------

def test_zz_teardown_leaves_no_container_mount_cgroup_namespace_or_process(
        node_env: NodeEnv, environment_factory: Any) -> None:
    env = node_env.env
    run_id = env.record.run_id
    holder = int(node_env.node.paths.holder_pid.read_text())
    netns = os.readlink(f"/proc/{holder}/ns/net")
    assert node_host.cgroup_pids(run_id), "the node runs containers in its cgroups"
    environment_factory.down(env)

    assert processes_of_run(run_id, env.settings.registry_dir) == []
    assert node_host.cgroup_dirs(run_id) == []
    leftover_ns = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                   if _netns(pid) == netns]
    assert leftover_ns == [], f"processes still in the node's network namespace: {leftover_ns}"
    assert _changed(node_env.before, run_id, node_env.claims) == []


def _changed(before: dict[str, list[str]], run_id: str, claims: list[str]) -> list[str]:
    """What differs on the host from `before`, leaving out what another session's node
    (running on this machine at `before` or now) accounts for: its cgroup tree, and the
    kubelet's sysctls (set by it, or restored when it stopped)."""
    others = [r for r in {*claims, *node_host.sysctl_runs()} if r != run_id]
    return [line for line in node_host.footprint_diff(before, node_host.host_footprint())
            if not (line.startswith("cgroups:") and "heracles-" + run_id not in line)
            and not (line.startswith("sysctls:") and others)]


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


OWNER = """
import pathlib, sys, time
from harness.backends.local.environment import LocalEnvironment
from harness.settings import Settings
settings = Settings().with_(state_dir=pathlib.Path(sys.argv[1]),
                                     components=("kube", "node"))
env = LocalEnvironment(settings)
env.up(mode="session")
pathlib.Path(sys.argv[2]).write_text(env.record.run_id)
time.sleep(3600)
"""


def test_zz_a_killed_node_run_is_reaped_by_the_next_run(
        node_env: NodeEnv, tmp_path: Path) -> None:
    """The owner of a node dies with -9: containers, shims, cgroups and the kubelet's
    sysctls outlive it until the next run's reaper undoes them."""
    before, claims = node_host.host_footprint(), node_host.sysctl_runs()
    registry = node_env.env.settings.registry_dir
    marker, errors = tmp_path / "run-id", tmp_path / "owner.err"
    # a short state directory: under xdist, tmp_path (.../popen-gw0/test_...) is too deep
    # for the node's unix sockets, and the owner refuses it, rightly
    state = Path(tempfile.mkdtemp(prefix="hr-", dir="/tmp"))

    def owner_up() -> str | bool:
        assert owner.poll() is None, f"the owner exited with {owner.returncode}"
        return marker.exists() and marker.read_text()

    with errors.open("w") as err:  # a file, not a pipe nobody reads while it runs
        owner = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(state), str(marker)],
            env={**os.environ, "HERACLES_REGISTRY_DIR": str(registry)},
            stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        run_id = eventually(owner_up, timeout=180, retry_on=(),
                            description="the owner's node is up")
    except AssertionError as exc:  # WaitTimeout too
        raise AssertionError(
            f"{exc}; the owner's stderr: {errors.read_text()[-3000:]}") from exc
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    assert node_host.cgroup_pids(run_id), "containers outlive their owner"
    assert _changed(before, run_id, claims) != []

    assert run_id in RunRegistry(registry).reap()

    assert processes_of_run(run_id, registry) == []
    assert node_host.cgroup_dirs(run_id) == []
    assert _changed(before, run_id, claims) == []
    shutil.rmtree(state, ignore_errors=True)
