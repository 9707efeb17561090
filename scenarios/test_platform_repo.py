"""Generic suites over a platform repository (--harness-platform-repo PATH, repeatable;
by default the sample repo and a second, kustomize-shaped one): whatever it holds is
discovered, applied (`harness apply --platform-repo`), and judged — every ExternalSecret
syncs, every PrometheusRule's metrics exist. Each failure names the file and object.
Known findings listed in the repo's `.heracles-expected.yaml` are strict xfails."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.clients.argocd import Applications
from harness.gitops.platform_repo import application_plan, apply_repo, scan
from harness.rules import check_rules, rules_from
from harness.settings import Settings
from harness.toolchain import Toolchain

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ENV = "dev"  # repos with one app-of-apps per environment: the dev one is applied


def repos(config: pytest.Config) -> list[Path]:
    given = config.getoption("--harness-platform-repo")
    return [Path(p).resolve() for p in given] if given else [
        FIXTURES / "gitops", FIXTURES / "samples" / "kustomize-platform"]


def expected(repo: Path) -> dict:
    f = repo / ".heracles-expected.yaml"
    return (yaml.safe_load(f.read_text()) or {}) if f.exists() else {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize by what each repo holds (scanned at collection, kustomize included)."""
    wanted = {"external_secret", "rule", "application"} & set(metafunc.fixturenames)
    if not wanted:
        return
    [name] = wanted
    kubectl = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    params = []
    for repo in repos(metafunc.config):
        found = scan(repo, str(kubectl))
        if name == "external_secret":
            params += [pytest.param((repo, d.obj["metadata"]["name"], d.ref),
                                    id=f"{repo.name}:{d.obj['metadata']['name']}")
                       for d in found.of_kind("ExternalSecret")]
        elif name == "application":
            plan = application_plan(found, ENV)
            params += [pytest.param((repo, d.name, d.ref), id=f"{repo.name}:{d.name}")
                       for d in plan.expected]
        else:
            docs = [(d.ref, d.obj) for d in found.of_kind("PrometheusRule")]
            dead = expected(repo).get("dead_rules", {})
            for rule in rules_from(docs):
                marks = [pytest.mark.xfail(strict=True, reason=dead[rule.name])] \
                    if rule.name in dead else []
                params.append(pytest.param((repo, rule), id=f"{repo.name}:{rule.name}",
                                           marks=marks))
    metafunc.parametrize(name, params)


@pytest.fixture(scope="module")
def applied(platform, request):
    """Each repo applied once into a namespace of its own (objects naming none)."""
    platform.install_crds("prometheus-operator")  # the spec's prerequisite
    return {repo: apply_repo(platform, repo, namespace=f"byo-{repo.name}"[:63], env=ENV)
            for repo in repos(request.config)}


def test_every_external_secret_syncs(applied, eso, external_secret):
    repo, name, ref = external_secret
    namespace = next(ns for ns, n in applied[repo]["external_secrets"] if n == name)
    try:
        eso.wait_synced(namespace, name, timeout=60)
    except AssertionError as exc:
        pytest.fail(f"{ref}: does not sync: {exc}", pytrace=False)
    assert eso.secret_data(namespace, name)


def test_every_application_reaches_synced(applied, kube, application):
    """Served from the harness's Git server (the repo's own repoURL rewritten), synced
    by the real Argo CD controller — children of an app-of-apps included."""
    repo, name, ref = application
    apps = applied[repo]["applications"]
    if name in apps.get("unservable", {}):
        pytest.fail(f"{ref}: {apps['unservable'][name]}", pytrace=False)
    try:
        Applications(kube).wait(name, sync="Synced", health=None, timeout=180)
    except AssertionError as exc:
        pytest.fail(f"{ref}: does not reach Synced: {exc}", pytrace=False)


def test_every_prometheus_rule_watches_metrics_that_exist(applied, prometheus, rule):
    _repo, r = rule
    [verdict] = check_rules([r], prometheus.live_metric_names())
    assert verdict.status != "dead", (
        f"{r.source}: rule {r.group}/{r.name} is dead: {verdict.missing} not exposed "
        f"(closest: {verdict.closest})")


def test_the_kustomize_sample_is_rendered_seeded_with_placeholders_and_reported(
        applied, vault, kube):
    sample = FIXTURES / "samples" / "kustomize-platform"
    if sample not in applied:
        pytest.skip("the kustomize sample is not among --harness-platform-repo")
    report = applied[sample]
    assert report["kustomizations"] == ["overlays/dev"]
    assert [tuple(x) for x in report["skipped"]] == [
        ("helm/vault-values.yaml", "no Kubernetes objects (Helm values or other YAML)")]
    assert report["vault_seed"]["source"] == "generated placeholders"
    for key, prop in (("payments/api", "token"), ("payments/signing", "key")):
        assert vault.kv_get(key)[prop].startswith("placeholder-")  # clearly marked
    assert ("payments-dev", "payments-api") in [tuple(x) for x in report["external_secrets"]]
    apps = report["applications"]
    assert apps["expected"] == ["payments-dev"]
    assert apps["served_from"].startswith("http://127.0.0.1:")
    assert apps["branches"] == ["main", "trunk"]  # its targetRevision exists on the copy
    served = kube.custom.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "argocd", "applications", "payments-dev")
    assert served["spec"]["source"]["repoURL"] == apps["served_from"]


def test_an_app_of_apps_repo_applies_only_the_chosen_environment(applied, kube):
    sample = FIXTURES / "gitops"
    if sample not in applied:
        pytest.skip("fixtures/gitops is not among --harness-platform-repo")
    apps = applied[sample]["applications"]
    assert [a.split(" ")[0] for a in apps["applied"]] == ["Application/platform"]
    assert "argocd/dev/app-of-apps.yaml" in apps["applied"][0]
    assert len(apps["other_environments"]) == 2  # staging's and prod's roots
    assert sorted(apps["expected"]) == ["observability", "platform", "secrets", "workload"]
    child = kube.custom.get_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "argocd", "applications", "secrets")
    # the child was created by Argo CD from the served copy: its repoURL points there too
    assert child["spec"]["source"]["repoURL"] == apps["served_from"]


def test_a_repo_without_applications_is_reported_as_such_not_as_missing_argocd(
        platform, tmp_path):
    """Argo CD runs here; a repo with no Application must say that, not "no Argo CD"."""
    repo = tmp_path / "plain"
    repo.mkdir()
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                  "  name: plain-config\ndata:\n  a: b\n")
    report = apply_repo(platform, repo, namespace="byo-plain", env=ENV)
    assert {"git", "argocd"} <= set(platform.components)
    assert report["applications"]["why_not"] == "the repository has no Argo CD Applications"
    assert report["applications"]["expected"] == []
