"""Each Argo CD Application rendered on its own, as Argo CD's repo-server would: directory
(recurse/include/exclude), kustomize (with the Application's options), Helm from the
repository (values, valuesObject, valueFiles, parameters, releaseName, namespace), the
toolchain's offline charts; what Argo CD could not render and what only the internet
could serve named on that Application; ApplicationSets expanded where they can be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.clients.manifests import Document
from harness.gitops.argo_render import (
    AppRender,
    ArgoRenderer,
    glob_match,
    normalize_url,
    sources_of,
)
from harness.runtime.redact import MASK
from harness.settings import Settings
from harness.toolchain import Toolchain

URL = "https://git.example.com/acme/platform.git"


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    return Toolchain(Settings().cache_dir)


@pytest.fixture(scope="module")
def kubectl(toolchain: Toolchain) -> str:
    path = toolchain.binary("kubernetes", "kubectl")
    if not path.exists():
        pytest.skip("kubectl is not built yet (harness toolchain install)")
    return str(path)


@pytest.fixture(scope="module")
def helm(toolchain: Toolchain) -> str:
    if toolchain.problem("helm"):
        pytest.skip("helm is not built yet (harness toolchain install --only helm)")
    return str(toolchain.binary("helm", "helm"))


def write(root: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content if isinstance(content, str) else yaml.safe_dump(content))


def application(name: str, source: dict[str, Any] | None = None,
                sources: list[dict[str, Any]] | None = None, namespace: str = "team") -> Document:
    spec: dict[str, Any] = {"project": "default",
                            "destination": {"server": "https://kubernetes.default.svc",
                                            "namespace": namespace}}
    if source is not None:
        spec["source"] = source
    if sources is not None:
        spec["sources"] = sources
    return Document("<test>", 1, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                  "metadata": {"name": name, "namespace": "argocd"},
                                  "spec": spec})


def cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **extra},
            "data": {"a": "b"}}


def render(root: Path, kubectl: str, app: Document, helm: str | None = None,
           toolchain: Toolchain | None = None) -> AppRender:
    with ArgoRenderer(root, kubectl, {URL}, helm=helm,
                      chart_file=toolchain.file if toolchain else None) as r:
        return r.render(app, "apps/test.yaml:1")


def names(r: AppRender) -> list[str]:
    return sorted(f"{d.kind}/{d.name}" for d in r.objects)


def levels(r: AppRender) -> list[str]:
    return [f.level for f in r.findings]


# ---- directory ---------------------------------------------------------------------------
def test_directory_recurse_include_exclude_as_argo_cd(tmp_path, kubectl):
    write(tmp_path, {"cfg/a.yaml": cm("a"), "cfg/sub/b.yaml": cm("b"),
                     "cfg/sub/drafts/c.yaml": cm("c"), "cfg/values.yaml": "replicas: 2\n",
                     "cfg/d.json": '{"apiVersion": "v1", "kind": "ConfigMap", '
                                   '"metadata": {"name": "d"}}'})
    flat = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "cfg"}))
    assert names(flat) == ["ConfigMap/a", "ConfigMap/d"]  # not recursive by default
    assert flat.sources[0].kind == "directory" and flat.findings == []
    deep = render(tmp_path, kubectl, application("x", {
        "repoURL": URL, "path": "cfg", "directory": {"recurse": True,
                                                      "exclude": "{sub/drafts/*,*.json}"}}))
    assert names(deep) == ["ConfigMap/a", "ConfigMap/b"]
    only = render(tmp_path, kubectl, application("x", {
        "repoURL": URL, "path": "cfg", "directory": {"recurse": True, "include": "sub/*"}}))
    assert names(only) == ["ConfigMap/b", "ConfigMap/c"]  # `*` crosses `/` as in Argo CD
    assert {d.namespace for d in deep.objects} == {"team"}  # the destination namespace


def test_glob_is_argo_cds():
    assert glob_match("*.yaml", "a/b.yaml") and glob_match("{a,b}/*", "b/x")
    assert not glob_match("a/*.yaml", "b/x.yaml") and glob_match("?.yml", "x.yml")


def test_a_broken_manifest_fails_the_application_not_the_scan(tmp_path, kubectl):
    write(tmp_path, {"cfg/ok.yaml": cm("ok"),
                     "cfg/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n"})
    r = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "cfg"}))
    assert r.status == "failed" and r.objects == []  # Argo CD renders nothing then
    assert "Failed to unmarshal 'bad.yaml'" in r.findings[0].message
    assert "cfg/bad.yaml:4: YAML error" in r.findings[0].message  # file and line named


def test_missing_path_and_ambiguous_type_are_argo_cd_errors(tmp_path, kubectl):
    (tmp_path / "here").mkdir()
    gone = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "gone"}))
    assert gone.status == "failed" and "gone: app path does not exist" in gone.findings[0].message
    both = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "here",
                                                       "helm": {}, "directory": {}}))
    assert "multiple application sources defined: Helm,Directory" in both.findings[0].message


def test_sources_win_over_source():
    app = application("x", {"repoURL": URL, "path": "a"},
                      sources=[{"repoURL": URL, "path": "b"}])
    assert [s["path"] for s in sources_of(app.obj)] == ["b"]


def test_elsewhere_and_plugins_are_unservable(tmp_path, kubectl):
    (tmp_path / "p").mkdir()
    other = render(tmp_path, kubectl, application("x", {"repoURL": "https://x/other.git",
                                                        "path": "nowhere"}))
    assert other.status == "unservable"
    assert "https://x/other.git nowhere is not in this repository" in other.unservable[0]
    plugin = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "p",
                                                         "plugin": {"name": "sops"}}))
    assert "config management plugin sops" in plugin.unservable[0]


def test_normalize_url():
    assert normalize_url("HTTPS://Git.Example.com/acme/platform.git/") == \
        "https://git.example.com/acme/platform"


# ---- kustomize ---------------------------------------------------------------------------
def test_kustomize_with_the_applications_options_on_a_copy(tmp_path, kubectl):
    kfile = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" \
            "resources:\n  - cm.yaml\n"
    write(tmp_path, {"k/kustomization.yaml": kfile, "k/cm.yaml": cm("settings")})
    r = render(tmp_path, kubectl, application("x", {
        "repoURL": URL, "path": "k", "kustomize": {"namePrefix": "dev-", "namespace": "ns1",
                                                    "commonLabels": {"team": "a"}}}))
    [obj] = r.objects
    assert (obj.name, obj.namespace) == ("dev-settings", "ns1")
    assert obj.obj["metadata"]["labels"] == {"team": "a"}
    assert r.sources[0].kind == "kustomize"
    assert (tmp_path / "k" / "kustomization.yaml").read_text() == kfile  # repo untouched


def test_a_remote_kustomize_base_fails_at_once_without_leaving_the_machine(tmp_path, kubectl):
    """kustomize would fetch a remote resource; here it meets a dead proxy on 127.0.0.1
    (and git may clone only local repositories): a finding on that Application, fast."""
    write(tmp_path, {"k/kustomization.yaml": {"resources": [
        "https://raw.githubusercontent.com/acme/x/main/cm.yaml",
        "https://github.com/acme/platform//base?ref=v1"]}})
    r = render(tmp_path, kubectl, application("remote", {"repoURL": URL, "path": "k"}))
    assert r.objects == [] and "error" in levels(r)
    said = " ".join(f.message for f in r.findings)
    assert "127.0.0.1:9: connect: connection refused" in said  # the dead proxy, not DNS
    assert "transport 'https' not allowed" in said  # git: local repositories only


def test_a_kustomize_failure_is_named_and_redacted(tmp_path, kubectl):
    write(tmp_path, {"k/kustomization.yaml": "resources:\n  - token=hunter2-not-shown.yaml\n"})
    r = render(tmp_path, kubectl, application("x", {"repoURL": URL, "path": "k"}))
    assert r.status == "failed"
    msg = r.findings[0].message
    assert msg.startswith("kustomize build k failed:")
    assert "hunter2-not-shown" not in msg and MASK in msg
    assert str(tmp_path) not in msg  # paths relative to the repository


# ---- Helm --------------------------------------------------------------------------------
CHART = {"apiVersion": "v2", "name": "team-app", "version": "1.0.0"}
TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
  namespace: {{ .Release.Namespace }}
data:
  colour: {{ .Values.colour | quote }}
  size: {{ .Values.size | quote }}
  from: {{ .Values.from | quote }}
"""


def helm_repo(root: Path) -> None:
    write(root, {"chart/Chart.yaml": CHART, "chart/templates/cm.yaml": TEMPLATE,
                 "chart/values.yaml": {"colour": "red", "size": "s", "from": "chart"},
                 "chart/values-dev.yaml": {"size": "m", "from": "valueFiles"},
                 "env/shared.yaml": {"colour": "green"}})


def test_helm_from_the_repository_merges_as_argo_cd(tmp_path, kubectl, helm):
    helm_repo(tmp_path)
    r = render(tmp_path, kubectl, application("team", {
        "repoURL": URL, "path": "chart", "helm": {
            "releaseName": "rel", "valueFiles": ["values-dev.yaml"],
            "values": "size: l\n", "valuesObject": {"from": "valuesObject"},
            "parameters": [{"name": "colour", "value": "blue"}]}}), helm=helm)
    [obj] = r.objects
    assert r.sources[0].kind == "helm" and r.findings == []
    assert (obj.name, obj.namespace) == ("rel-cfg", "team")
    # valueFiles < valuesObject (which replaces `values`) < parameters
    assert obj.obj["data"] == {"colour": "blue", "size": "m", "from": "valuesObject"}


@pytest.mark.parametrize("helm_opts", [
    {"fileParameters": [{"name": "colour", "path": "../../outside.txt"}]},
    {"valueFiles": ["$values/../outside.yaml"]},
])
def test_no_file_outside_the_repository_reaches_a_render(tmp_path, kubectl, helm, helm_opts):
    """An Application cannot pull the host's files (keys, the state directory's tokens)
    into what is rendered, applied and reported: Argo CD's repo-server refuses it too."""
    repo = tmp_path / "repo"
    helm_repo(repo)
    (tmp_path / "outside.txt").write_text("host-secret")
    (tmp_path / "outside.yaml").write_text("colour: host-secret\n")
    r = render(repo, kubectl, application("team", sources=[
        {"repoURL": URL, "path": "chart", "helm": helm_opts},
        {"repoURL": URL, "ref": "values"}]), helm=helm)
    assert r.objects == [] and "resolves outside the repository" in str(r.findings)
    assert "host-secret" not in str(r.findings)


def test_helm_value_files_from_a_ref_source_and_missing_ones(tmp_path, kubectl, helm):
    helm_repo(tmp_path)
    r = render(tmp_path, kubectl, application("team", sources=[
        {"repoURL": URL, "path": "chart", "helm": {"valueFiles": ["$values/env/shared.yaml"]}},
        {"repoURL": URL, "targetRevision": "main", "ref": "values"}]), helm=helm)
    assert [s.kind for s in r.sources] == ["helm", "ref"]
    assert r.objects[0].obj["data"]["colour"] == "green"
    gone = render(tmp_path, kubectl, application("team", {
        "repoURL": URL, "path": "chart", "helm": {"valueFiles": ["nope.yaml"]}}), helm=helm)
    assert gone.status == "failed" and "valueFiles nope.yaml: no such file" in \
        gone.findings[0].message
    ignored = render(tmp_path, kubectl, application("team", {
        "repoURL": URL, "path": "chart", "helm": {"valueFiles": ["nope.yaml"],
                                                  "ignoreMissingValueFiles": True}}), helm=helm)
    assert ignored.status == "rendered" and levels(ignored) == ["info"]


def test_a_chart_that_does_not_template_is_named(tmp_path, kubectl, helm):
    write(tmp_path, {"chart/Chart.yaml": CHART,
                     "chart/templates/cm.yaml": "kind: {{ .Values.x.y.z }\n"})
    r = render(tmp_path, kubectl, application("team", {"repoURL": URL, "path": "chart"}),
               helm=helm)
    assert r.status == "failed" and "helm template failed" in r.findings[0].message


def test_helm_dependencies_from_elsewhere_are_unservable(tmp_path, kubectl, helm):
    write(tmp_path, {"chart/Chart.yaml": {**CHART, "dependencies": [
        {"name": "redis", "version": "18.0.0",
         "repository": "https://charts.bitnami.com/bitnami"}]},
        "chart/templates/cm.yaml": TEMPLATE})
    r = render(tmp_path, kubectl, application("team", {"repoURL": URL, "path": "chart"}),
               helm=helm)
    assert r.status == "unservable"
    assert "redis 18.0.0 from https://charts.bitnami.com/bitnami" in r.unservable[0]


def test_the_toolchains_vault_chart_renders_offline(tmp_path, kubectl, helm, toolchain):
    if toolchain.problem("chart-vault"):
        pytest.skip("the Vault chart is not in the toolchain yet")
    r = render(tmp_path, kubectl, application("vault", {
        "repoURL": "https://helm.releases.hashicorp.com/", "chart": "vault",
        "targetRevision": "0.28.0",
        "helm": {"values": "server:\n  ha:\n    enabled: true\n    raft:\n      enabled: true\n"}},
        namespace="vault"), helm=helm, toolchain=toolchain)
    assert r.platform == "Vault" and r.status == "rendered"
    assert "StatefulSet/vault" in names(r)
    [warn] = r.findings  # the version it asked for is not the one held
    assert warn.level == "warning" and "asks for 0.28.0" in warn.message


def test_a_chart_the_toolchain_does_not_hold_is_unservable_not_a_crash(tmp_path, kubectl):
    r = render(tmp_path, kubectl, application("grafana", {
        "repoURL": "https://grafana.github.io/helm-charts", "chart": "grafana",
        "targetRevision": "8.4.0"}))
    assert r.status == "unservable" and r.objects == []
    assert "Helm chart grafana 8.4.0 from https://grafana.github.io/helm-charts" in \
        r.unservable[0]
    mirror = render(tmp_path, kubectl, application("vault", {
        "repoURL": "https://charts.example.com/mirror", "chart": "vault"}))
    assert "the toolchain's vault is the one from https://helm.releases.hashicorp.com" in \
        mirror.unservable[0]


# ---- ApplicationSets ---------------------------------------------------------------------
def appset(generators: list[dict[str, Any]], template: dict[str, Any],
           go: bool = False) -> Document:
    spec: dict[str, Any] = {"generators": generators, "template": template}
    if go:
        spec["goTemplate"] = True
    return Document("<test>", 1, {"apiVersion": "argoproj.io/v1alpha1",
                                  "kind": "ApplicationSet",
                                  "metadata": {"name": "set", "namespace": "argocd"},
                                  "spec": spec})


TPL = {"metadata": {"name": "app-{{name}}"},
       "spec": {"project": "default", "source": {"repoURL": URL, "path": "{{path}}"},
                "destination": {"namespace": "{{ name }}"}}}


def expand(root: Path, kubectl: str, s: Document) -> tuple[Any, list[Document]]:
    with ArgoRenderer(root, kubectl, {URL}) as r:
        return r.expand(s, "apps/set.yaml:1")


def test_list_generator(tmp_path, kubectl):
    rep, apps = expand(tmp_path, kubectl, appset(
        [{"list": {"elements": [{"name": "a", "path": "x/a"}, {"name": "b", "path": "x/b"}]}}],
        TPL))
    assert [a.name for a in apps] == ["app-a", "app-b"]
    assert apps[1].obj["spec"]["source"]["path"] == "x/b"
    assert apps[1].obj["spec"]["destination"]["namespace"] == "b"
    assert rep.generators[0].to_json() == {"type": "list", "expanded": True,
                                           "applications": 2, "why": ""}


def test_git_directory_and_file_generators_read_this_repository(tmp_path, kubectl):
    write(tmp_path, {"teams/red/cm.yaml": cm("r"), "teams/blue/cm.yaml": cm("b"),
                     "teams/old/cm.yaml": cm("o"), "cfg/one.json": '{"name": "one", '
                                                                   '"path": "teams/red"}'})
    tpl = {"metadata": {"name": "t-{{path.basename}}"},
           "spec": {"source": {"repoURL": URL, "path": "{{path}}"}}}
    _rep, apps = expand(tmp_path, kubectl, appset([{"git": {
        "repoURL": URL, "revision": "HEAD",
        "directories": [{"path": "teams/*"}, {"path": "teams/old", "exclude": True}]}}], tpl))
    assert sorted(a.name for a in apps) == ["t-blue", "t-red"]
    go_tpl = {"metadata": {"name": "f-{{ .name }}"},
              "spec": {"source": {"repoURL": URL, "path": "{{ .path.path }}"}}}
    _rep, apps = expand(tmp_path, kubectl, appset([{"git": {
        "repoURL": URL, "files": [{"path": "cfg/*.json"}]}}], go_tpl, go=True))
    assert [a.name for a in apps] == ["f-one"]
    assert apps[0].obj["spec"]["source"]["path"] == "cfg"


def test_generators_the_harness_does_not_expand_are_findings(tmp_path, kubectl):
    rep, apps = expand(tmp_path, kubectl, appset(
        [{"matrix": {"generators": []}}, {"git": {"repoURL": "https://x/other.git",
                                                  "directories": [{"path": "*"}]}},
         {"list": {"elements": [{"name": "a"}]}}],
        {"metadata": {"name": "{{ .name | upper }}"}}, go=True))
    assert apps == []
    assert [(g.type, g.expanded) for g in rep.generators] == [
        ("matrix", False), ("git", False), ("list", True)]
    whys = " ".join(f.message for f in rep.findings)
    assert "matrix generator: not expanded" in whys and "not this repository" in whys
    assert "functions, pipes and conditionals are not evaluated offline" in whys


def test_clusters_generator_is_the_one_in_cluster_destination(tmp_path, kubectl):
    _rep, apps = expand(tmp_path, kubectl, appset(
        [{"clusters": {}}], {"metadata": {"name": "x-{{name}}"},
                             "spec": {"destination": {"server": "{{server}}"}}}))
    assert [a.name for a in apps] == ["x-in-cluster"]
    assert apps[0].obj["spec"]["destination"]["server"] == "https://kubernetes.default.svc"


def test_an_umbrella_chart_gets_file_and_toolchain_dependencies(tmp_path, kubectl, helm,
                                                               toolchain):
    """file:// dependencies copied in as `helm dependency build` would; a dependency on
    a chart the toolchain holds taken from it — offline, the repository untouched."""
    if toolchain.problem("chart-vault"):
        pytest.skip("the Vault chart is not in the toolchain yet")
    write(tmp_path, {
        "platform/Chart.yaml": {**CHART, "name": "platform", "dependencies": [
            {"name": "vault", "version": "0.34.1",
             "repository": "https://helm.releases.hashicorp.com"},
            {"name": "lib", "version": "0.1.0", "repository": "file://../lib"}]},
        "platform/values.yaml": {"vault": {"injector": {"enabled": False}}},
        "lib/Chart.yaml": {**CHART, "name": "lib"},
        "lib/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lib\n"})
    r = render(tmp_path, kubectl, application("platform", {"repoURL": URL, "path": "platform"}),
               helm=helm, toolchain=toolchain)
    assert r.status == "rendered" and r.platform == "Vault"
    assert {"ConfigMap/lib", "StatefulSet/platform-vault"} <= set(names(r))
    assert not (tmp_path / "platform" / "charts").exists()
