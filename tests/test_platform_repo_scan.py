"""Loading a customer's GitOps tree: plain YAML and kustomize (rendered with the
toolchain's kubectl), what is discovered, what is skipped, and bad input named."""

from pathlib import Path

import pytest

from harness.manifests import ManifestError
from harness.platform_repo import placeholder_seed, remote_refs, scan
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
                               "Application": 0}
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
