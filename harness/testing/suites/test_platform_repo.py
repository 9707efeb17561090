"""Generic suites over a platform repository (--harness-platform-repo PATH, repeatable;
by default the sample repo, a kustomize-shaped one, one whose root kustomization does not
build and one installing Vault through an Argo CD Application): whatever it holds is
read as Argo CD reads it (each Application rendered on its own), applied (`harness apply
--platform-repo`), and judged — every ExternalSecret syncs, every PrometheusRule's
metrics exist, every Application reaches Synced (or, when Argo CD cannot render it, Argo
CD says so as the offline render did). Each failure names the file and object. Known
findings listed in the repo's `.heracles-expected.yaml` (`dead_rules`, `applications`)
are strict xfails."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from harness.clients.argocd import Applications
from harness.errors import HarnessError
from harness.gitops import repo_report
from harness.gitops.platform_repo import application_plan, apply_repo, payload, scan
from harness.rules import Rule, check_rules, rules_from
from harness.settings import Settings
from harness.testing.options import option
from harness.toolchain import Toolchain
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.clients.eso import ExternalSecretsClient
    from harness.clients.kube import KubeClient

pytestmark = pytest.mark.slow
FIXTURES = Settings().fixtures_dir
ENV = "dev"  # repos with one app-of-apps per environment: the dev one is applied


def repos(config: pytest.Config) -> list[Path]:
    given = option(config, "platform-repo")
    return [Path(p).resolve() for p in given] if given else [
        FIXTURES / "gitops", FIXTURES / "samples" / "kustomize-platform",
        FIXTURES / "samples" / "broken-root-kustomization", FIXTURES / "samples" / "vault-app"]


def among(applied: dict[Path, dict[str, Any]], repo: Path) -> Path | None:
    """The key of `repo` in the applied repositories (however its path was given)."""
    return next((k for k in applied if k.resolve() == repo.resolve()), None)


def expected(repo: Path) -> dict[str, Any]:
    f = repo / ".heracles-expected.yaml"
    return (yaml.safe_load(f.read_text()) or {}) if f.exists() else {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize by what each repo holds (scanned at collection, kustomize included)."""
    wanted = {"external_secret", "rule", "application"} & set(metafunc.fixturenames)
    if not wanted:
        return
    [name] = wanted
    try:
        kubectl = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    except HarnessError as exc:  # no toolchain: one skip, named in the session header
        metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(
            reason=f"cannot scan the platform repositories: {exc}"))])
        return
    params = []
    for repo in repos(metafunc.config):
        found = scan(repo, str(kubectl))
        objects = payload(found, ENV)  # what the dev Applications render (or the tree)
        if name == "external_secret":
            params += [pytest.param((repo, d.obj["metadata"]["name"], d.ref),
                                    id=f"{repo.name}:{d.obj['metadata']['name']}")
                       for d in objects if d.kind == "ExternalSecret"]
        elif name == "application":
            plan = application_plan(found, ENV)
            known = expected(repo).get("applications", {})
            for d in plan.expected:
                render = found.render_of(d)
                failed = [f.message for f in render.findings if f.level == "error"] \
                    if render is not None and render.status == "failed" else []
                marks = [pytest.mark.xfail(strict=True, reason=known[d.name])] \
                    if d.name in known else []
                params.append(pytest.param((repo, d.name, d.ref, failed),
                                           id=f"{repo.name}:{d.name}", marks=marks))
        else:
            docs = [(d.ref, d.obj) for d in objects if d.kind == "PrometheusRule"]
            dead = expected(repo).get("dead_rules", {})
            for rule in rules_from(docs):
                marks = [pytest.mark.xfail(strict=True, reason=dead[rule.name])] \
                    if rule.name in dead else []
                params.append(pytest.param((repo, rule), id=f"{repo.name}:{rule.name}",
                                           marks=marks))
    metafunc.parametrize(name, params)


@pytest.fixture(scope="module")
def applied(platform: LocalEnvironment,
            request: pytest.FixtureRequest) -> dict[Path, dict[str, Any]]:
    """Each repo applied once into a namespace of its own (objects naming none)."""
    platform.install_crds("prometheus-operator")  # the spec's prerequisite
    return {repo: apply_repo(platform, repo, namespace=f"byo-{repo.name}"[:63], env=ENV)
            for repo in repos(request.config)}


def test_every_external_secret_syncs(applied: dict[Path, dict[str, Any]],
                                     eso: ExternalSecretsClient,
                                     external_secret: tuple[Path, str, str]) -> None:
    repo, name, ref = external_secret
    namespace = next(ns for ns, n in applied[repo]["external_secrets"] if n == name)
    try:
        eso.wait_synced(namespace, name, timeout=60)
    except AssertionError as exc:
        pytest.fail(f"{ref}: does not sync: {exc}", pytrace=False)
    assert eso.secret_data(namespace, name)


def comparison_error(kube: KubeClient, name: str, timeout: float = 120) -> str:
    """Until Argo CD reports that it cannot render the Application (ComparisonError)."""
    def found() -> str:
        conds = Applications(kube).state(name)["conditions"]
        errors = [c.get("message", "") for c in conds if c.get("type") == "ComparisonError"]
        if errors:
            return errors[0]
        raise AssertionError(f"Application {name}: no ComparisonError (conditions: {conds})")

    return eventually(found, timeout=timeout, interval=1.0,
                      description=f"Application {name} ComparisonError")


def test_every_application_reaches_synced(
        applied: dict[Path, dict[str, Any]], kube: KubeClient,
        application: tuple[Path, str, str, list[str]]) -> None:
    """Served from the harness's Git server (the repo's own repoURL rewritten), synced
    by the real Argo CD controller — children of an app-of-apps and Applications an
    ApplicationSet generates included. One the offline render found Argo CD cannot
    render must get Argo CD's own ComparisonError instead (the two agree)."""
    repo, name, ref, failed = application
    apps = applied[repo]["applications"]
    if name in apps.get("unservable", {}):
        pytest.fail(f"{ref}: {apps['unservable'][name]}", pytrace=False)
    if failed:
        try:
            comparison_error(kube, name)
        except AssertionError as exc:
            pytest.fail(f"{ref}: the offline render failed ({failed[0]}) but Argo CD does "
                        f"not report it: {exc}", pytrace=False)
        return
    try:
        Applications(kube).wait(name, sync="Synced", health=None, timeout=180)
    except AssertionError as exc:
        pytest.fail(f"{ref}: does not reach Synced: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def scraped(applied: dict[Path, dict[str, Any]], eso: ExternalSecretsClient,
            prometheus: Any) -> set[str]:
    """Every applied ExternalSecret reconciled (synced or not), then every target
    scraped after that: ESO exposes its per-ExternalSecret metrics only from then on."""
    for found in applied.values():
        for namespace, name in found["external_secrets"]:
            def reconciled(ns: str = namespace, n: str = name) -> bool:
                return eso.condition(ns, n) is not None

            eventually(reconciled, timeout=60,
                       description=f"ExternalSecret {namespace}/{name} reconciled")
    prometheus.wait_first_scrapes(since=time.time())
    return prometheus.live_metric_names()


def test_every_prometheus_rule_watches_metrics_that_exist(scraped: set[str],
                                                         rule: tuple[Path, Rule]) -> None:
    _repo, r = rule
    [verdict] = check_rules([r], scraped)
    assert verdict.status != "dead", (
        f"{r.source}: rule {r.group}/{r.name} is dead: {verdict.missing} not exposed "
        f"(closest: {verdict.closest})")


def test_the_kustomize_sample_is_rendered_seeded_with_placeholders_and_reported(
        applied: dict[Path, dict[str, Any]], vault: Any, kube: KubeClient) -> None:
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
    served = kube.get_custom("argoproj.io", "v1alpha1", "argocd", "applications",
                             "payments-dev")
    assert served["spec"]["source"]["repoURL"] == apps["served_from"]


def test_an_app_of_apps_repo_applies_only_the_chosen_environment(
        applied: dict[Path, dict[str, Any]], kube: KubeClient) -> None:
    sample = FIXTURES / "gitops"
    if sample not in applied:
        pytest.skip("fixtures/gitops is not among --harness-platform-repo")
    apps = applied[sample]["applications"]
    assert [a.split(" ")[0] for a in apps["applied"]] == ["Application/platform"]
    assert "argocd/dev/app-of-apps.yaml" in apps["applied"][0]
    assert len(apps["other_environments"]) == 2  # staging's and prod's roots
    assert sorted(apps["expected"]) == ["observability", "platform", "secrets", "workload"]
    child = kube.get_custom("argoproj.io", "v1alpha1", "argocd", "applications", "secrets")
    # the child was created by Argo CD from the served copy: its repoURL points there too
    assert child["spec"]["source"]["repoURL"] == apps["served_from"]


def test_a_repo_without_applications_is_reported_as_such_not_as_missing_argocd(
        platform: LocalEnvironment, tmp_path: Path) -> None:
    """Argo CD runs here; a repo with no Application must say that, not "no Argo CD"."""
    repo = tmp_path / "plain"
    repo.mkdir()
    (repo / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                  "  name: plain-config\ndata:\n  a: b\n")
    report = apply_repo(platform, repo, namespace="byo-plain", env=ENV)
    assert {"git", "argocd"} <= set(platform.components)
    assert report["applications"]["why_not"] == "the repository has no Argo CD Applications"
    assert report["applications"]["expected"] == []


def live_report(platform: LocalEnvironment, repo: Path, report: dict[str, Any],
                tmp_path: Path) -> dict[str, Any]:
    """The repository report of an applied repo (what `--report DIR` writes)."""
    kubectl = str(platform.toolchain.binary("kubernetes", "kubectl"))
    found = scan(repo, kubectl, toolchain=platform.toolchain)
    live = repo_report.collect_live(platform, found, ENV, report, settle=60)
    out = repo_report.build(found, ENV, platform.settings.profile, live, report)
    files = repo_report.write(out, tmp_path / repo.name)
    assert files["html"].exists()
    return out


def test_a_root_kustomization_that_does_not_build_still_gets_its_report(
        applied: dict[Path, dict[str, Any]], platform: LocalEnvironment, kube: KubeClient,
        tmp_path: Path) -> None:
    """Done-when (a), applied: the root's failure named, and per Application its render,
    its Sync/Health from the real Argo CD, per ExternalSecret synced or why not."""
    repo = among(applied, FIXTURES / "samples" / "broken-root-kustomization")
    if repo is None:
        pytest.skip("samples/broken-root-kustomization is not among --harness-platform-repo")
    argo = Applications(kube)
    for name in ("ledger-dev", "ledger-config", "team-alpha", "team-beta"):
        argo.wait(name, sync="Synced", health=None, timeout=180)
    comparison_error(kube, "legacy")
    report = live_report(platform, repo, applied[repo], tmp_path)
    [root] = [f for f in report["repository_findings"] if f["level"] == "error"]
    assert root["what"] == "kustomization ." and "bootstrap/namespaces.yaml" in root["message"]
    apps = {a["name"]: a for a in report["applications"]}
    assert {n: (a["status"], a.get("sync")) for n, a in apps.items()} == {
        "ledger-dev": ("rendered", "Synced"), "ledger-config": ("rendered", "Synced"),
        "team-alpha": ("rendered", "Synced"), "team-beta": ("rendered", "Synced"),
        "legacy": ("failed", "Unknown"), "grafana": ("unservable", apps["grafana"].get("sync"))}
    assert any("ComparisonError" in m or "kustomize" in m for m in apps["legacy"]["messages"])
    assert "grafana 8.4.0 from https://grafana.github.io/helm-charts" in \
        apps["grafana"]["findings"][0]["message"]
    [es] = report["external_secrets"]
    assert (es["name"], es["status"]) == ("ledger-db", "synced"), es


def test_an_application_installing_vault_is_read_by_platform_repo(
        applied: dict[Path, dict[str, Any]], platform: LocalEnvironment, kube: KubeClient,
        tmp_path: Path) -> None:
    """Done-when (b), applied: the Vault Application is not applied next to the
    harness's own Vault; its inline values are the report's Vault configuration."""
    repo = among(applied, FIXTURES / "samples" / "vault-app")
    if repo is None:
        pytest.skip("samples/vault-app is not among --harness-platform-repo")
    apps = applied[repo]["applications"]
    assert "the harness runs Vault itself" in apps["platform"]["vault"]
    assert apps["expected"] == ["orders-secrets"]
    Applications(kube).wait("orders-secrets", sync="Synced", health=None, timeout=180)
    assert "vault" not in Applications(kube).names()
    report = live_report(platform, repo, applied[repo], tmp_path)
    [v] = report["vault"]
    assert (v["source"], v["application"], v["mode"], v["replicas"]) == (
        "argocd/vault.yaml", "vault", "ha-raft", 3)
    assert v["origin"].endswith("values from helm.values (inline)")
    assert v["run_with"].startswith("harness up --profile staging --vault-values ")
    [es] = report["external_secrets"]
    assert (es["namespace"], es["name"], es["status"]) == ("orders", "orders-api", "synced")
