"""GitOps against real Argo CD (application-controller + repo-server + Redis) pulling
the platform repository from the harness's Git server over smart HTTP: app-of-apps
bootstrap (first without the Prometheus Operator CRDs: spec troubleshooting #1),
commit -> Synced, promotion by merge, a YAML error and its fix, the runbook's manual
sync, selfHeal, prune, and a rollout on the KWOK nodes.

The module has an environment of its own without Prometheus, so the CRDs are really
absent at first; the tests run in order, each building on the last."""

from __future__ import annotations

import time

import pytest
import yaml

from harness import eventually
from harness.clients.argocd import Applications
from harness.clients.eso import ExternalSecretsClient
from harness.clients.git import Workspace
from harness.clients.kube import KubeClient
from harness.vault_config.seed import parse_seed

pytestmark = pytest.mark.slow
CHILDREN = ["secrets", "observability", "workload"]


@pytest.fixture(scope="module")
def env(environment_factory):
    with environment_factory.environment(
            "gitops", profile="dev",
            components=("etcd", "kube", "vault", "eso", "git", "argocd")) as plat:
        yield plat


@pytest.fixture(scope="module")
def gkube(env):
    return env.kube_client()


@pytest.fixture(scope="module")
def apps(gkube):
    return Applications(gkube)


@pytest.fixture(scope="module")
def repo(env, tmp_path_factory):
    return Workspace(env.git.url(), tmp_path_factory.mktemp("ws") / "platform")


def replicas(gkube, namespace="app"):
    return gkube.apps.read_namespaced_deployment("sample-app", namespace).spec.replicas


def set_replicas(repo, n: int) -> None:
    docs = list(yaml.safe_load_all(repo.read("workload/sample-app.yaml")))
    docs[0]["spec"]["replicas"] = n
    repo.write("workload/sample-app.yaml", yaml.safe_dump_all(docs, sort_keys=False))


def test_bootstrap_fails_without_the_prometheus_crds_then_syncs_with_them(env, gkube, apps):
    eso = ExternalSecretsClient(env, gkube)
    eso.apply(env.settings.fixtures_dir / "gitops" / "argocd" / "dev" / "app-of-apps.yaml")
    apps.wait("platform", timeout=120)
    assert apps.names() == ["observability", "platform", "secrets", "workload"]
    apps.wait("secrets", timeout=120)
    apps.wait("workload", timeout=120)
    # Spec troubleshooting #1: the CRDs are a mandatory prerequisite.
    message = apps.wait_condition("observability", "CRD is installed")
    assert "could not find monitoring.coreos.com/" in message
    assert apps.state("observability")["sync"] != "Synced"
    env.install_crds("prometheus-operator")
    apps.sync("observability")  # the runbook: sync again once the prerequisite is there
    apps.wait("observability", timeout=120)
    seeded = {path: values for _m, path, values in
              parse_seed(env.settings.fixtures_dir / "vault" / "seed.txt")}
    for name, path in (("postgres-credentials", "postgres/main"),
                       ("redis-credentials", "redis/main"),
                       ("harbor-credentials", "harbor/main")):
        eso.wait_synced("app", name, timeout=60)
        assert eso.secret_data("app", name) == seeded[path]
    pods = eventually(lambda: [p for p in gkube.core.list_namespaced_pod("app").items
                               if p.status.phase == "Running"] or None, timeout=60,
                      description="sample-app Pods Running on the KWOK nodes")
    assert len(pods) == 2


def test_a_commit_to_the_environment_branch_is_synced(repo, apps, gkube):
    set_replicas(repo, 3)
    repo.commit("sample-app: 3 replicas")
    sha = repo.push("dev")
    t0 = time.monotonic()
    apps.refresh("workload")
    apps.wait("workload", revision=sha)
    print(f"\ncommit -> Synced: {time.monotonic() - t0:.2f}s")
    assert eventually(lambda: replicas(gkube) == 3, timeout=30)


def test_promotion_is_a_merge_and_main_never_moves_without_one(env, repo, apps, gkube):
    eso = ExternalSecretsClient(env, gkube)
    staging_app = yaml.safe_load(
        (env.settings.fixtures_dir / "gitops" / "argocd" / "staging" / "apps" /
         "workload.yaml").read_text())
    staging_app["metadata"]["name"] = "workload-staging"
    staging_app["spec"]["destination"]["namespace"] = "app-staging"
    eso.apply_object(staging_app, None)
    apps.wait("workload-staging", health=None, timeout=120)
    before_staging = replicas(gkube, "app-staging")
    main_before = repo.remote_head("main")

    repo.checkout("dev")
    set_replicas(repo, 4)
    repo.commit("sample-app: 4 replicas (dev first)")
    dev_sha = repo.push("dev")
    apps.refresh("workload")
    apps.wait("workload", revision=dev_sha)
    apps.refresh("workload-staging")
    time.sleep(0)  # staging tracks its own branch: it must not move
    assert apps.state("workload-staging")["revision"] != dev_sha
    assert replicas(gkube, "app-staging") == before_staging

    staging_sha = repo.merge("dev", "staging")
    apps.refresh("workload-staging")
    apps.wait("workload-staging", revision=staging_sha, health=None)
    assert eventually(lambda: replicas(gkube, "app-staging") == 4, timeout=30)
    assert repo.remote_head("main") == main_before  # no merge, no change on main
    repo.checkout("dev")


def test_a_yaml_error_is_reported_and_the_fix_recovers(repo, apps):
    repo.checkout("dev")
    repo.write("workload/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                       "  name: broken\n data: [unclosed\n")
    bad = repo.commit("a YAML syntax error")
    repo.push("dev")
    apps.refresh("workload")
    message = apps.wait_condition("workload", "yaml")
    assert "broken.yaml" in message or "line" in message
    assert apps.state("workload")["revision"] != bad or apps.state("workload")["sync"] != \
        "Synced"
    repo.remove("workload/broken.yaml")
    fixed = repo.commit("fix the YAML error")
    repo.push("dev")
    apps.refresh("workload")
    apps.wait("workload", revision=fixed)


def test_manual_sync_self_heal_and_prune(repo, apps, gkube):
    apps.sync("workload")
    op = eventually(lambda: (o := apps.state("workload")["operation"]).get(
        "operation", {}).get("initiatedBy", {}).get("username") == "heracles-harness"
        and o.get("phase") == "Succeeded" and o, timeout=60,
        description="the manual sync operation succeeded")
    assert op["syncResult"]["revision"] == repo.remote_head("dev")

    wanted = replicas(gkube)
    gkube.kubectl("scale", "deployment/sample-app", "-n", "app", "--replicas=7")
    eventually(lambda: replicas(gkube) == wanted, timeout=60,
               description="selfHeal reverts a manual change")

    docs = [d for d in yaml.safe_load_all(repo.read("workload/sample-app.yaml"))
            if d["kind"] != "Service"]
    repo.write("workload/sample-app.yaml", yaml.safe_dump_all(docs, sort_keys=False))
    sha = repo.commit("remove the sample-app Service")
    repo.push("dev")
    apps.refresh("workload")
    apps.wait("workload", revision=sha)
    eventually(lambda: KubeClient.absent(gkube.core.read_namespaced_service, "sample-app",
                                         "app"), timeout=60,
               description="prune deletes the Service removed from Git")


def test_rollout_restart_makes_a_new_replicaset_whose_pods_run(gkube):
    def replicasets():
        return {rs.metadata.name: rs for rs in gkube.apps.list_namespaced_replica_set(
            "app", label_selector="app=sample-app").items}

    before = set(replicasets())
    gkube.kubectl("rollout", "restart", "deployment/sample-app", "-n", "app")
    new = eventually(lambda: [n for n in replicasets() if n not in before] or None,
                     timeout=60, description="a new ReplicaSet")
    gkube.kubectl("rollout", "status", "deployment/sample-app", "-n", "app", "--timeout=90s",
                  timeout=120)
    running = [p for p in gkube.core.list_namespaced_pod(
        "app", label_selector="app=sample-app").items if p.status.phase == "Running"
        and p.metadata.owner_references[0].name == new[0]]
    assert len(running) == replicas(gkube)
