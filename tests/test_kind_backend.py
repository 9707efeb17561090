"""The kind backend, as far as this machine can take it: the cluster config, the chart
values rendered by the real Helm (lint + template) from the pinned charts, the images
pinned to the local toolchain's versions, the plan of steps, and the precise reason it
stops when Docker or the images are missing."""

from __future__ import annotations

import pytest
import yaml

from harness.backends.existing import BackendError
from harness.backends.kind.environment import (
    NODE_IMAGE,
    KindEnvironment,
    KindUnavailable,
    charts,
    cluster_config,
    validate_cluster_config,
    vault_values,
)
from harness.settings import Settings


@pytest.fixture(scope="module")
def kind(tmp_path_factory):
    return KindEnvironment(Settings(state_dir=tmp_path_factory.mktemp("kind-state")))


@pytest.fixture(scope="module")
def rendered(kind):
    return kind.render()


def objects(rendered, release, kind_=None):
    return [d for d in rendered["rendered"][release] if kind_ in (None, d["kind"])]


def test_the_cluster_config_is_valid_and_listens_on_loopback_only(rendered):
    cfg = yaml.safe_load((rendered["dir"] / "cluster.yaml").read_text())
    assert validate_cluster_config(cfg) == []
    assert cfg["networking"]["apiServerAddress"] == "127.0.0.1"
    assert cfg["nodes"][0]["image"] == NODE_IMAGE


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda c: c["networking"].update(apiServerAddress="0.0.0.0"), "must be 127.0.0.1"),
    (lambda c: c.update(featureGate={"x": True}), "unknown field featureGate"),
    (lambda c: c["nodes"][0].update(image="kindest/node:v1.34.0"), "pinned by digest"),
    (lambda c: c["nodes"][0].update(extraPortMappings=[{"containerPort": 80,
                                                        "hostPort": 80}]),
     "must listen on 127.0.0.1"),
    (lambda c: c.update(nodes=[{"role": "worker", "image": NODE_IMAGE}]),
     "no control-plane node"),
])
def test_cluster_config_mistakes_are_caught(mutate, problem):
    cfg = cluster_config("x", 6443)
    mutate(cfg)
    assert any(problem in p for p in validate_cluster_config(cfg))


def test_every_image_is_pinned_to_the_local_toolchain_versions(rendered, kind):
    images = set(rendered["images"])
    for want in ("quay.io/openbao/openbao:2.7.2",
                 "oci.external-secrets.io/external-secrets/external-secrets:v0.16.2",
                 "quay.io/argoproj/argocd:v3.2.11",
                 "quay.io/prometheus-operator/prometheus-operator:v0.85.0",
                 "quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0",
                 "quay.io/prometheus/prometheus:v2.42.0",
                 "quay.io/prometheus/alertmanager:v0.25.0", NODE_IMAGE):
        assert want in images
    versions = {c.tool: kind.toolchain.spec(c.tool).version for c in kind.charts}
    assert versions["chart-external-secrets"] == kind.toolchain.spec("external-secrets").version
    assert not any(i.endswith(":latest") or ":" not in i.rsplit("/", 1)[-1] for i in images)


def test_vault_is_three_raft_nodes_running_bao(rendered):
    [sts] = objects(rendered, "vault", "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    [server] = sts["spec"]["template"]["spec"]["containers"]
    args = " ".join(server["args"])
    assert "bao server -config=" in args and "vault server" not in args
    probe = " ".join(server["readinessProbe"]["exec"]["command"])
    assert "bao status" in probe
    assert {e["name"] for e in server["env"]} >= {"VAULT_ADDR", "BAO_ADDR"}
    [cm] = objects(rendered, "vault", "ConfigMap")
    hcl = next(iter(cm["data"].values()))
    assert 'storage "raft"' in hcl and hcl.count("retry_join") == 3
    assert "performance_multiplier = 1" in hcl


def test_crds_come_from_the_toolchain_not_the_charts(rendered, kind):
    for release in ("external-secrets", "kube-prometheus-stack", "argocd"):
        assert objects(rendered, release, "CustomResourceDefinition") == []
    names = {f.name for f in kind.crd_files()}
    assert {"bundle.yaml", "prometheuses.yaml", "alertmanagers.yaml",
            "application-crd.yaml"} <= names


def test_an_enabled_dependency_that_is_not_available_offline_is_refused(kind, tmp_path):
    [kps] = [c for c in charts() if c.release == "kube-prometheus-stack"]
    kps.values["grafana"] = {"enabled": True}
    with pytest.raises(BackendError, match=r"dependency grafana is enabled .* not "
                                           r"available offline"):
        kind.chart_dir(kps, tmp_path)


def test_customer_vault_values_win_except_the_image():
    customer = {"server": {"image": {"repository": "hashicorp/vault", "tag": "1.15.0"},
                           "ha": {"replicas": 5, "raft": {"config": "storage \"raft\" {}"}}}}
    values = vault_values(customer)
    assert values["server"]["ha"]["replicas"] == 5
    assert values["server"]["ha"]["raft"]["config"] == 'storage "raft" {}'
    assert values["server"]["image"] == {"repository": "quay.io/openbao/openbao",
                                         "tag": "2.7.2"}


def test_the_plan_creates_loads_installs_initialises_then_forwards(kind, rendered):
    steps = kind.plan()
    names = [s.name for s in steps]
    assert names[0].startswith("preflight")
    assert names[1] == "create the cluster"
    loads = [n for n in names if n.startswith("load image ")]
    assert len(loads) == len(rendered["images"]) - 1  # all but the node image
    order = [names.index(n) for n in ("install CRDs at the toolchain's versions",
                                      "helm install vault", "helm install external-secrets",
                                      "helm install kube-prometheus-stack",
                                      "helm install argocd")]
    assert order == sorted(order) and order[0] > names.index(loads[-1])
    init = next(i for i, n in enumerate(names) if n.startswith("vault: operator init"))
    assert names.index("helm install vault") < init < names.index(
        "helm install external-secrets")
    assert names[-1].startswith("port-forwards on 127.0.0.1")
    create = steps[1].argv
    assert create[1:4] == ["create", "cluster", "--name"] and "--config" in create


def test_without_a_docker_daemon_the_reason_is_precise(kind, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(KindUnavailable, match="the Docker daemon is not reachable"):
        kind.preflight()


def test_without_a_docker_cli_the_reason_is_precise(kind, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KindUnavailable, match="no docker CLI on PATH"):
        kind.preflight()


def test_the_teams_vault_values_reach_the_vault_chart(tmp_path):
    values = tmp_path / "vault-values.yaml"
    values.write_text("server:\n  ha:\n    replicas: 5\n")
    kind = KindEnvironment(Settings(state_dir=tmp_path, vault_values=values))
    [vault] = [c for c in kind.charts if c.release == "vault"]
    assert vault.values["server"]["ha"]["replicas"] == 5
    assert vault.values["server"]["image"]["repository"] == "quay.io/openbao/openbao"
