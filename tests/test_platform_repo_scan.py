"""Loading a customer's GitOps tree: plain YAML and kustomize (rendered with the
toolchain's kubectl), what is discovered, what is skipped, and bad input named."""

from pathlib import Path

import pytest

from harness.clients.manifests import ManifestError
from harness.gitops.platform_repo import (
    application_plan,
    payload,
    placeholder_seed,
    remote_refs,
    scan,
)
from harness.settings import Settings
from harness.toolchain import Toolchain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def kubectl():
    path = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    if not path.exists():
        pytest.skip("kubectl is not built yet (harness toolchain install)")
    return str(path)


def test_kustomize_overlay_is_rendered_and_helm_values_skipped(kubectl):
    found = scan(FIXTURES / "samples" / "kustomize-platform", kubectl)
    assert [k.name for k in found.kustomizations] == ["dev"]
    assert found.summary() == {"ExternalSecret": 1, "SecretStore": 0,
                               "ClusterSecretStore": 1, "PrometheusRule": 1,
                               "Application": 1}
    [es] = found.of_kind("ExternalSecret")
    assert es.obj["metadata"]["namespace"] == "payments-dev"  # from the overlay
    assert es.obj["metadata"]["labels"] == {"env": "dev"}
    assert found.skipped == [("helm/vault-values.yaml",
                              "no Kubernetes objects (Helm values or other YAML)")]
    refs = remote_refs(found)
    assert refs == {"payments/api": {"token"}, "payments/signing": {"key"}}
    seed = placeholder_seed(refs)
    assert all(v.startswith("placeholder-") for vals in seed.values() for v in vals.values())


def test_the_sample_gitops_repo_is_discovered(kubectl):
    found = scan(FIXTURES / "gitops", kubectl)
    assert found.summary()["ExternalSecret"] == 3
    assert found.summary()["Application"] == 12  # 3 environments x (app-of-apps + 3)
    assert found.kustomizations == []


def test_bad_yaml_is_named_by_file_and_line(tmp_path, kubectl):
    (tmp_path / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                      "  name: a\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yaml").write_text("apiVersion: v1\nkind: [\n")
    with pytest.raises(ManifestError, match=r"sub/bad.yaml:\d+: YAML error"):
        scan(tmp_path, kubectl)


def test_a_broken_kustomization_is_named(tmp_path, kubectl):
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(ManifestError, match="kustomize build failed"):
        scan(tmp_path, kubectl)


def test_not_a_directory(tmp_path, kubectl):
    with pytest.raises(Exception, match="not a directory"):
        scan(tmp_path / "nope", kubectl)


def test_application_plan_picks_the_environment_and_its_children(kubectl):
    found = scan(FIXTURES / "gitops", kubectl)
    plan = application_plan(found, "staging")
    assert [d.name for d in plan.roots] == ["platform"]
    assert "argocd/staging/app-of-apps.yaml" in plan.roots[0].source
    assert sorted(d.name for d in plan.expected) == [
        "observability", "platform", "secrets", "workload"]
    assert all("/staging/" in d.source for d in plan.expected)
    assert plan.branches == ("main", "staging")
    assert plan.repo_urls == {"http://git.heracles.svc.cluster.local/platform.git"}
    assert len(plan.other_envs) == 2 and plan.unservable == {}


def test_an_application_outside_the_tree_is_named_as_unservable(tmp_path, kubectl):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "grafana.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: grafana\n"
        "  namespace: argocd\nspec:\n  project: default\n  source:\n"
        "    repoURL: https://grafana.github.io/helm-charts\n    chart: grafana\n"
        "    targetRevision: 8.4.0\n  destination:\n    server: https://kubernetes.default.svc\n"
        "    namespace: monitoring\n")
    plan = application_plan(scan(tmp_path, kubectl), "dev")
    assert "https://grafana.github.io/helm-charts grafana is not in this repository" in \
        plan.unservable["grafana"]


def test_roots_with_one_name_and_no_environment_match_are_an_error(tmp_path, kubectl):
    for env in ("blue", "green"):
        (tmp_path / env).mkdir()
        (tmp_path / env / "root.yaml").write_text(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: root\n"
            "  namespace: argocd\nspec:\n  source:\n    repoURL: https://x/r.git\n"
            f"    path: {env}\n  destination:\n    namespace: x\n")
    with pytest.raises(ManifestError, match=r"2 Applications named root .* choose with "
                                            r"--gitops-env"):
        application_plan(scan(tmp_path, kubectl), "dev")


# ---- read as Argo CD reads it (issue 17 part 4) -----------------------------------------
BROKEN_ROOT = FIXTURES / "samples" / "broken-root-kustomization"
VAULT_APP = FIXTURES / "samples" / "vault-app"


def test_a_root_kustomization_that_does_not_build_stops_nothing(kubectl):
    """Done-when (a): the root's failure is a finding of its own, and every Application
    is still rendered on its own — the broken one and the unservable one named."""
    found = scan(BROKEN_ROOT, kubectl)
    [root] = [f for f in found.findings if f.level == "error"]
    assert root.what == "kustomization ."
    assert "kustomize build of the repository root failed" in root.message
    assert "bootstrap/namespaces.yaml" in root.message
    status = {r.name: r.status for r in found.apps}
    assert status == {"ledger-dev": "rendered", "ledger-config": "rendered",
                      "legacy": "failed", "grafana": "unservable",
                      "team-alpha": "rendered", "team-beta": "rendered"}
    legacy = next(r for r in found.apps if r.name == "legacy")
    assert legacy.file == "apps/legacy.yaml:3"
    assert "kustomize build legacy failed" in legacy.findings[0].message
    assert "service.yaml" in legacy.findings[0].message
    grafana = next(r for r in found.apps if r.name == "grafana")
    assert "grafana 8.4.0 from https://grafana.github.io/helm-charts" in grafana.unservable[0]
    [es] = found.of_kind("ExternalSecret")
    assert (es.namespace, es.name) == ("ledger-dev", "ledger-db")
    config = next(r for r in found.apps if r.name == "ledger-config")
    assert sorted(d.name for d in config.objects) == ["ledger-platform-rules",
                                                      "ledger-settings"]  # drafts excluded
    assert any("ConfigMap/ledger-draft" in o for o in found.orphans)
    assert [a.generated for a in found.appsets] == [["team-alpha", "team-beta"]]


def test_the_plan_applies_generated_applications_and_payload_follows_the_renders(kubectl):
    found = scan(BROKEN_ROOT, kubectl)
    plan = application_plan(found, "dev")
    assert sorted(d.name for d in plan.roots) == [
        "grafana", "ledger-config", "ledger-dev", "legacy", "team-alpha", "team-beta"]
    assert plan.generated == ["team-alpha", "team-beta"]
    assert "grafana" in plan.unservable
    assert sorted((d.kind, d.namespace, d.name) for d in payload(found, "dev")) == [
        ("ClusterSecretStore", "ledger-dev", "ledger-vault"),
        ("ConfigMap", "ledger-alpha", "team-settings"),
        ("ConfigMap", "ledger-beta", "team-settings"),
        ("ConfigMap", "ledger-config", "ledger-settings"),
        ("ExternalSecret", "ledger-dev", "ledger-db"),
        ("PrometheusRule", "ledger-config", "ledger-platform-rules"),
        ("PrometheusRule", "ledger-dev", "ledger-rules")]


def test_a_root_kustomization_that_builds_supersedes_the_raw_application_files(
        tmp_path, kubectl):
    (tmp_path / "apps").mkdir()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    (tmp_path / "apps" / "cfg.yaml").write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cfg\n"
        "  namespace: argocd\nspec:\n  source:\n    repoURL: https://x/r.git\n    path: cfg\n"
        "  destination:\n    namespace: team\n")
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n  - apps/cfg.yaml\nnamePrefix: prod-\n")
    found = scan(tmp_path, kubectl)
    assert [r.name for r in found.apps] == ["prod-cfg"]  # as `kubectl apply -k .` makes it
    assert found.findings == []


def test_the_sample_gitops_repo_renders_per_application(kubectl):
    found = scan(FIXTURES / "gitops", kubectl)
    assert {r.status for r in found.apps} == {"rendered"} and len(found.apps) == 12
    plan = application_plan(found, "dev")
    dev = {d.name for d in plan.expected}
    assert dev == {"platform", "observability", "secrets", "workload"}
    secrets = next(r for r in found.apps if r.name == "secrets" and "/dev/" in r.file)
    assert secrets.parents and secrets.parents[0].startswith("argocd/platform@")
    assert {(d.namespace, d.name) for d in payload(found, "dev")
            if d.kind == "ExternalSecret"} == {("app", "harbor-credentials"),
                                               ("app", "postgres-credentials"),
                                               ("app", "redis-credentials")}


def test_an_application_installing_vault_is_read_not_applied(kubectl):
    found = scan(VAULT_APP, kubectl)
    vault = next(r for r in found.apps if r.name == "vault")
    assert vault.platform == "Vault" and vault.status == "rendered"
    plan = application_plan(found, "dev")
    assert [d.name for d in plan.roots] == ["orders-secrets"]
    assert "the harness runs Vault itself" in plan.platform["vault"]
    assert {d.kind for d in payload(found, "dev")} == {"ExternalSecret", "ClusterSecretStore"}


def test_a_repository_without_applications_is_read_as_before(kubectl):
    found = scan(FIXTURES / "samples" / "kustomize-platform" / "base", kubectl)
    assert found.apps == [] and found.findings == []
    assert found.summary()["ExternalSecret"] == 1
