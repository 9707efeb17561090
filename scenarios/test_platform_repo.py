"""Generic suites over a platform repository (--harness-platform-repo PATH, repeatable;
by default the sample repo and a second, kustomize-shaped one): whatever it holds is
discovered, applied (`harness apply --platform-repo`), and judged — every ExternalSecret
syncs, every PrometheusRule's metrics exist. Each failure names the file and object.
Known findings listed in the repo's `.heracles-expected.yaml` are strict xfails."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.platform_repo import apply_repo, scan
from harness.rules import check_rules, rules_from
from harness.settings import Settings
from harness.toolchain import Toolchain

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def repos(config: pytest.Config) -> list[Path]:
    given = config.getoption("--harness-platform-repo")
    return [Path(p).resolve() for p in given] if given else [
        FIXTURES / "gitops", FIXTURES / "samples" / "kustomize-platform"]


def expected(repo: Path) -> dict:
    f = repo / ".heracles-expected.yaml"
    return (yaml.safe_load(f.read_text()) or {}) if f.exists() else {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize by what each repo holds (scanned at collection, kustomize included)."""
    if not {"external_secret", "rule"} & set(metafunc.fixturenames):
        return
    kubectl = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    params = []
    for repo in repos(metafunc.config):
        found = scan(repo, str(kubectl))
        if "external_secret" in metafunc.fixturenames:
            params += [pytest.param((repo, d.obj["metadata"]["name"], d.ref),
                                    id=f"{repo.name}:{d.obj['metadata']['name']}")
                       for d in found.of_kind("ExternalSecret")]
        else:
            docs = [(d.ref, d.obj) for d in found.of_kind("PrometheusRule")]
            dead = expected(repo).get("dead_rules", {})
            for rule in rules_from(docs):
                marks = [pytest.mark.xfail(strict=True, reason=dead[rule.name])] \
                    if rule.name in dead else []
                params.append(pytest.param((repo, rule), id=f"{repo.name}:{rule.name}",
                                           marks=marks))
    name = "external_secret" if "external_secret" in metafunc.fixturenames else "rule"
    metafunc.parametrize(name, params)


@pytest.fixture(scope="module")
def applied(platform, request):
    """Each repo applied once into a namespace of its own (objects naming none)."""
    platform.install_crds("prometheus-operator")  # the spec's prerequisite
    return {repo: apply_repo(platform, repo, namespace=f"byo-{repo.name}"[:63])
            for repo in repos(request.config)}


def test_every_external_secret_syncs(applied, eso, external_secret):
    repo, name, ref = external_secret
    namespace = next(ns for ns, n in applied[repo]["external_secrets"] if n == name)
    try:
        eso.wait_synced(namespace, name, timeout=60)
    except AssertionError as exc:
        pytest.fail(f"{ref}: does not sync: {exc}", pytrace=False)
    assert eso.secret_data(namespace, name)


def test_every_prometheus_rule_watches_metrics_that_exist(applied, prometheus, rule):
    _repo, r = rule
    [verdict] = check_rules([r], prometheus.live_metric_names())
    assert verdict.status != "dead", (
        f"{r.source}: rule {r.group}/{r.name} is dead: {verdict.missing} not exposed "
        f"(closest: {verdict.closest})")


def test_the_kustomize_sample_is_rendered_seeded_with_placeholders_and_reported(
        applied, vault):
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
