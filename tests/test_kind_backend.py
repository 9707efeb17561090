"""The kind backend without a cluster: the cluster config (official and local node
image), the chart values rendered by the real Helm (lint + template) from the pinned
charts, the images pinned to the local toolchain's versions, the plan of steps, and the
precise reason it stops when it cannot run. The cluster itself: scenarios/
test_kind_backend.py."""

from __future__ import annotations

import os

import pytest
import yaml

from harness.backends.existing import BackendError
from harness.backends.install.charts import charts, vault_values
from harness.backends.install.environment import KindUnavailable
from harness.backends.kind.environment import (
    KUBELET_PATCH,
    NODE_IMAGE,
    KindEnvironment,
    cluster_config,
    validate_cluster_config,
)
from harness.errors import HarnessError
from harness.images.node_image import NODE_REF
from harness.images.recipes import RECIPES
from harness.settings import Settings

SAMPLES = Settings().fixtures_dir / "samples"
pytestmark = pytest.mark.toolchain  # the charts, helm and kind come from it


@pytest.fixture(scope="module")
def kind(tmp_path_factory):
    return KindEnvironment(Settings(state_dir=tmp_path_factory.mktemp("kind-state"),
                                    profile="staging", kind_image="official"))


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
    # kubelet 1.34 refuses cgroup v1 unless told: kind does not tell it, we do
    assert cfg["kubeadmConfigPatches"] == [KUBELET_PATCH]
    assert "failCgroupV1: false" in KUBELET_PATCH


def test_the_local_node_image_is_accepted_without_a_digest_and_nothing_else_is(tmp_path):
    """A node image built here has an image ID, no repository digest: accepted by its
    reference, while any other undigested image is refused."""
    local = KindEnvironment(Settings(state_dir=tmp_path, kind_image="local"))
    cfg = yaml.safe_load((local.render()["dir"] / "cluster.yaml").read_text())
    assert cfg["nodes"][0]["image"] == NODE_REF
    assert validate_cluster_config(cfg, frozenset({NODE_REF})) == []
    assert any("pinned by digest" in p for p in validate_cluster_config(cfg))


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


def test_every_image_is_one_built_here_at_the_toolchain_versions(rendered, kind):
    """Every image any chart runs is one `harness images build` makes (the pods backend
    runs them; kind would load them): nothing a registry would have to serve."""
    images = set(rendered["images"])
    assert NODE_IMAGE in images
    assert images - {NODE_IMAGE} == {
        "quay.io/openbao/openbao:2.7.2",
        "oci.external-secrets.io/external-secrets/external-secrets:v0.16.2",
        "quay.io/argoproj/argocd:v3.2.11", "ecr-public.aws.com/docker/library/redis:7.0.15",
        "quay.io/prometheus/prometheus:v2.42.0", "quay.io/prometheus/alertmanager:v0.25.0"}
    assert images - {NODE_IMAGE} <= {r.ref for r in RECIPES.values()}
    versions = {c.tool: kind.toolchain.spec(c.tool).version for c in kind.charts}
    assert versions["chart-external-secrets"] == kind.toolchain.spec("external-secrets").version
    assert not any(i.endswith(":latest") or ":" not in i.rsplit("/", 1)[-1] for i in images)


def test_staging_vault_is_three_raft_nodes_with_tls_running_bao(rendered):
    [sts] = objects(rendered, "vault", "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    [server] = sts["spec"]["template"]["spec"]["containers"]
    args = " ".join(server["args"])
    assert "bao server -config=" in args and "vault server" not in args
    probe = " ".join(server["readinessProbe"]["exec"]["command"])
    assert "bao status" in probe
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["VAULT_ADDR"].startswith("https://") and env["BAO_ADDR"] == env["VAULT_ADDR"]
    assert env["BAO_CACERT"] == "/vault/userconfig/vault-tls/ca.crt"
    [cm] = objects(rendered, "vault", "ConfigMap")
    hcl = next(iter(cm["data"].values()))
    assert 'storage "raft"' in hcl and hcl.count("retry_join") == 3
    assert hcl.count("https://vault-") == 3 and "leader_ca_cert_file" in hcl
    assert 'tls_cert_file = "/vault/userconfig/vault-tls/tls.crt"' in hcl
    assert "tls_disable" not in hcl and "performance_multiplier = 1" in hcl


def test_dev_vault_is_one_dev_mode_pod_with_a_random_root_token(tmp_path):
    from harness.runtime.redact import REDACTOR

    dev = KindEnvironment(Settings(state_dir=tmp_path, profile="dev"))
    [sts] = objects(dev.render(), "vault", "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    [server] = sts["spec"]["template"]["spec"]["containers"]
    assert "bao server -dev" in " ".join(server["args"])
    env = {e["name"]: e.get("value") for e in server["env"]}
    token = env["BAO_DEV_ROOT_TOKEN_ID"]
    assert token == env["VAULT_DEV_ROOT_TOKEN_ID"] and token != "root" and len(token) >= 24
    assert REDACTOR.redact(f"token {token}") != f"token {token}"
    assert (tmp_path / "kind" / "values" / "vault.yaml").stat().st_mode & 0o077 == 0
    assert not any(s.name == "vault: TLS certificate for its Service and Pods (Secret "
                   "vault-tls)" for s in dev.plan())


def test_crds_come_from_the_toolchain_not_the_charts(rendered, kind):
    for release in ("external-secrets", "prometheus", "argocd"):
        assert objects(rendered, release, "CustomResourceDefinition") == []
    names = {f.name for f in kind.crd_files()}
    assert {"bundle.yaml", "application-crd.yaml"} <= names


def test_an_enabled_dependency_that_is_not_available_offline_is_refused(kind, tmp_path):
    [prom] = [c for c in charts() if c.release == "prometheus"]
    prom.values["kube-state-metrics"] = {"enabled": True}
    with pytest.raises(BackendError, match=r"dependency kube-state-metrics is enabled .* "
                                           r"not available offline"):
        kind.chart_dir(prom, tmp_path)


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
    create = names.index("create the cluster")
    load = names.index("load the platform's images into the node")
    assert names.index("the Git server (for Argo CD)") < create < load
    if kind.docker_mode == "private":  # no Docker answers here: the harness brings one
        assert names[1].startswith("private Docker daemon") and names[create + 1].startswith(
            "carry the API server and Services to 127.0.0.1")
    order = [names.index(n) for n in ("install CRDs at the toolchain's versions",
                                      "helm install vault", "helm install external-secrets",
                                      "helm install prometheus",
                                      "helm install argocd")]
    assert order == sorted(order) and order[0] > load
    init = next(i for i, n in enumerate(names) if n.startswith("vault: operator init"))
    tls = next(i for i, n in enumerate(names) if n.startswith("vault: TLS certificate"))
    assert tls < names.index("helm install vault") < init < names.index(
        "helm install external-secrets")
    assert names[-1].startswith("reach Vault")
    argv = steps[create].argv
    assert argv[1:4] == ["create", "cluster", "--name"] and "--config" in argv


def test_the_official_image_behind_the_private_daemon_is_refused_with_the_reason(
        tmp_path, monkeypatch):
    """No Docker answers and the official image is asked for: the private daemon reaches
    no registry, and the message says what to do instead."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    kind = KindEnvironment(Settings(state_dir=tmp_path, kind_image="official"))
    kind.render()
    kind.plan()
    assert kind.docker_mode == "private"
    if os.geteuid() != 0:
        with pytest.raises(KindUnavailable, match="starting a private one needs root"):
            kind.preflight()
        return
    with pytest.raises(KindUnavailable, match=r"no registry is reachable.*harness images "
                                              r"node-image"):
        kind.preflight()


def test_a_local_image_not_built_yet_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    from harness.toolchain import Toolchain

    # the toolchain's binaries, but an image cache where no node image was ever built
    kind = KindEnvironment(Settings(state_dir=tmp_path, cache_dir=tmp_path / "cache",
                                    kind_image="local"),
                           toolchain=Toolchain(Settings().cache_dir))
    kind.node_image = NODE_REF
    kind.docker_mode = "private"
    if os.geteuid() == 0:
        with pytest.raises(KindUnavailable, match="the node image is not built: harness "
                                                  "images node-image"):
            kind.preflight()


def test_an_unknown_kind_image_choice_is_refused():
    with pytest.raises(HarnessError, match="unknown kind image 'latest'"):
        Settings(kind_image="latest")


def test_the_teams_vault_values_reach_the_vault_chart(tmp_path):
    values = tmp_path / "vault-values.yaml"
    values.write_text("server:\n  ha:\n    replicas: 5\n")
    kind = KindEnvironment(Settings(state_dir=tmp_path, vault_values=values))
    [vault] = [c for c in kind.charts if c.release == "vault"]
    assert vault.values["server"]["ha"]["replicas"] == 5
    assert vault.values["server"]["image"]["repository"] == "quay.io/openbao/openbao"


def test_an_argocd_application_installing_vault_gives_the_chart_its_values(tmp_path):
    """--vault-values may be the Argo CD Application that installs the Vault chart (its
    inline values), not only a values file: the chart backends read it the same way."""
    app = SAMPLES / "vault-app" / "argocd" / "vault.yaml"
    kind = KindEnvironment(Settings(state_dir=tmp_path, vault_values=app))
    [vault] = [c for c in kind.charts if c.release == "vault"]
    assert vault.values["server"]["ha"]["enabled"] is True
    assert "apiVersion" not in vault.values and "spec" not in vault.values
    assert vault.values["server"]["image"]["repository"] == "quay.io/openbao/openbao"
