"""The local control plane behaves like a cluster the customer's platform can run on:
nodes, scheduling, garbage collection, ServiceAccount tokens, RBAC."""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes import client

from harness import eventually
from harness.backends.local.components.kube import NODES


def test_kubectl_get_nodes_shows_ready_kwok_nodes(platform, kube):
    out = json.loads(kube.kubectl("get", "nodes", "-o", "json").stdout)
    nodes = {n["metadata"]["name"]: n for n in out["items"]}
    assert len(nodes) == NODES[platform.settings.profile][0]
    for name, node in nodes.items():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{name} not Ready"
        assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="app", image="registry.invalid/app:1",
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "100m", "memory": "64Mi"}))]))))


def test_deployment_becomes_available_on_fake_nodes(kube, namespace):
    kube.apps.create_namespaced_deployment(namespace, deployment("web", 2))

    def available():
        dep = kube.apps.read_namespaced_deployment("web", namespace)
        return (dep.status.available_replicas or 0) == 2

    eventually(available, timeout=60, description="Deployment web Available with 2 replicas")
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.status.phase == "Running" and p.spec.node_name.startswith("kwok-node-")
               for p in pods)


def test_pod_requesting_more_than_a_node_has_stays_pending(kube, namespace):
    """Troubleshooting #5 (resource shortage) is reproducible: nodes have real capacity."""
    big = client.V1Pod(
        metadata=client.V1ObjectMeta(name="too-big"),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="app", image="registry.invalid/app:1",
            resources=client.V1ResourceRequirements(requests={"cpu": "64"}))]))
    kube.core.create_namespaced_pod(namespace, big)

    def unschedulable():
        pod = kube.core.read_namespaced_pod("too-big", namespace)
        conds = {c.type: c for c in (pod.status.conditions or [])}
        sched = conds.get("PodScheduled")
        return sched is not None and sched.status == "False" and \
            "Insufficient cpu" in (sched.message or "")

    eventually(unschedulable, timeout=30, description="too-big reported Insufficient cpu")
    assert kube.core.read_namespaced_pod("too-big", namespace).status.phase == "Pending"


def test_deleting_an_owner_garbage_collects_its_dependents(kube, namespace):
    owner = kube.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner",
                                  uid=owner.metadata.uid)
    kube.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref]),
        string_data={"k": "v"}))
    kube.core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone():
        return kube.absent(kube.core.read_namespaced_secret, "dependent", namespace)

    eventually(dependent_gone, timeout=30, description="garbage collector deletes dependent")


def sa_token_secret(kube, namespace: str, sa: str) -> str:
    kube.core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=sa)))
    kube.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=f"{sa}-token", annotations={"kubernetes.io/service-account.name": sa}),
        type="kubernetes.io/service-account-token"))

    def token():
        data = kube.core.read_namespaced_secret(f"{sa}-token", namespace).data or {}
        return base64.b64decode(data["token"]).decode() if "token" in data else None

    return eventually(token, timeout=30, description=f"token of {sa}-token populated")


def test_service_account_token_secret_gets_a_working_token(kube, namespace):
    """What Vault's kubernetes auth relies on (the spec's `vault-auth-secret`)."""
    token = sa_token_secret(kube, namespace, "vault-auth")
    secret = kube.core.read_namespaced_secret("vault-auth-token", namespace)
    assert {"token", "ca.crt", "namespace"} <= set(secret.data)
    review = client.AuthenticationV1Api(kube.api_client).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:vault-auth"


def as_token(kube, token: str) -> client.ApiClient:
    base = kube.api_client.configuration
    cfg = client.Configuration()
    cfg.host = base.host
    cfg.ssl_ca_cert = base.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


def test_rbac_denies_an_unprivileged_service_account(kube, namespace):
    token = sa_token_secret(kube, namespace, "nobody")
    core = client.CoreV1Api(as_token(kube, token))
    with pytest.raises(client.ApiException) as denied:
        core.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    # ...and a Role granting exactly that is honoured (RBAC really evaluates).
    kube.rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="read-secrets"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"])]))
    kube.rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="nobody-reads"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                  name="read-secrets"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="nobody",
                                       namespace=namespace)]))
    eventually(lambda: core.list_namespaced_secret(namespace) is not None, timeout=15,
               description="bound ServiceAccount may list secrets")
    with pytest.raises(client.ApiException) as still_denied:
        core.list_namespaced_secret("kube-system")
    assert still_denied.value.status == 403


def test_namespace_deletion_completes(kube):
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="t-gone")))
    kube.core.create_namespaced_config_map(
        "t-gone", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    kube.core.delete_namespace("t-gone")

    def gone():
        return kube.absent(kube.core.read_namespace, "t-gone")

    eventually(gone, timeout=60, description="namespace t-gone finalized and deleted")


def test_every_component_listens_on_loopback_only(platform):
    import psutil

    listeners = []
    for comp in platform.components.values():
        for proc in comp.processes():
            for conn in psutil.Process(proc.pid).net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listeners.append((proc.name, conn.laddr.ip, conn.laddr.port))
    assert {name for name, _ip, _port in listeners} >= {
        "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert [entry for entry in listeners if entry[1] != "127.0.0.1"] == []
