"""Bring your own platform repository: load a customer's GitOps tree, discover what the
harness knows how to judge (ExternalSecrets, SecretStores/ClusterSecretStores,
PrometheusRules, Argo CD Applications), and apply it to a running environment: the
namespaces it needs first, in-cluster addresses through the service map, and Vault
seeded from a file the user gives — or with generated placeholder values for every
remoteRef key/property, marked as placeholders in the report.

A tree with Argo CD Applications (or ApplicationSets) is read as Argo CD reads it: from
those Applications, each source rendered on its own (`argo_render.py`), so one that does
not render — or a root kustomization that does not build — is a finding and the rest is
still read; what is applied is what the chosen environment's Applications render. A
tree without Applications is read as files: its kustomize entry points (rendered with
the toolchain's kubectl) and plain YAML.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.clients import manifests
from harness.clients.manifests import Document, ManifestError
from harness.errors import HarnessError
from harness.gitops.argo_render import (
    AppRender,
    AppSetReport,
    ArgoRenderer,
    Finding,
    app_key,
    is_argo,
    offline_env,
    sources_of,
)

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.toolchain import Toolchain

KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
JUDGED = ("ExternalSecret", "SecretStore", "ClusterSecretStore", "PrometheusRule",
          "Application")
REPO_POLICY = "heracles-platform-repo"


@dataclass
class RepoScan:
    """What the repository holds. Without Argo CD Applications: every object of its files
    and kustomizations (`docs`). With them, Argo CD's view: every Application rendered on
    its own (`apps`, ApplicationSets expanded where possible), `docs` = the Applications
    and what they render; what does not build is a finding, not the end of the scan."""

    root: Path
    docs: list[Document] = field(default_factory=list)
    kustomizations: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    apps: list[AppRender] = field(default_factory=list)
    appsets: list[AppSetReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the repository itself
    orphans: list[str] = field(default_factory=list)  # objects no Application deploys
    render_seconds: float = 0.0

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.docs if d.kind == kind]

    def summary(self) -> dict[str, int]:
        return {k: len(self.of_kind(k)) for k in JUDGED}

    def render_of(self, app: Document) -> AppRender | None:
        key = app_key(app)
        return next((r for r in self.apps if r.key == key), None)


def _kustomize_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for name in KUSTOMIZATION for p in root.rglob(name)
                   if not any(x.startswith(".") for x in p.relative_to(root).parts)})


def _kustomize_roots(root: Path, problems: list[Finding] | None = None) -> list[Path]:
    """Directories with a kustomization that no other kustomization includes (the
    entry points: overlays; their bases are rendered through them). A kustomization
    that is not YAML raises — or, given `problems`, is recorded there and skipped."""
    dirs = _kustomize_dirs(root)
    included: set[Path] = set()
    for d in dirs:
        k = next(d / n for n in KUSTOMIZATION if (d / n).exists())
        try:
            spec = yaml.safe_load(k.read_text()) or {}
        except yaml.YAMLError as exc:
            if problems is None:
                raise ManifestError(f"{k}: YAML error: {exc}") from None
            problems.append(Finding("error", f"kustomization {d.relative_to(root)}",
                                    f"{k.relative_to(root)}: YAML error: {exc}"))
            continue
        included.update(t for t in _kustomize_refs(d, spec) if t.is_dir())
    return [d for d in dirs if d.resolve() not in included]


def _kustomize_refs(d: Path, spec: Any) -> list[Path]:
    """What a kustomization in `d` pulls in (resources, bases, components), resolved."""
    if not isinstance(spec, dict):
        return []
    return [(d / str(ref)).resolve() for ref in [
        *spec.get("resources", []), *spec.get("bases", []), *spec.get("components", [])]]


def _kustomize_closure(dirs: list[Path]) -> set[Path]:
    """The kustomization directories (and files) these render through: themselves and
    every base/resource/component they reach."""
    seen: set[Path] = set()
    todo = [d.resolve() for d in dirs]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        k = next((d / n for n in KUSTOMIZATION if (d / n).is_file()), None)
        if k is None:
            continue
        try:
            spec = yaml.safe_load(k.read_text()) or {}
        except yaml.YAMLError:
            continue
        for target in _kustomize_refs(d, spec):
            if target.is_dir():
                todo.append(target)
            elif target.is_file():
                seen.add(target)
    return seen


def _yaml_files(root: Path) -> list[Path]:
    return [f for f in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])
            if not any(part.startswith(".") for part in f.relative_to(root).parts)]


def _load_tolerant(root: Path, files: list[Path]) -> tuple[dict[Path, list[Document]],
                                                            dict[Path, str]]:
    """Every file's objects, and the files that do not load (with the message)."""
    loaded: dict[Path, list[Document]] = {}
    problems: dict[Path, str] = {}
    for f in files:
        try:
            loaded[f] = manifests.load([f])
        except ManifestError as exc:
            problems[f] = str(exc).replace(str(f), str(f.relative_to(root)))
    return loaded, problems


def scan(root: Path, kubectl: str, toolchain: Toolchain | None = None) -> RepoScan:
    """Load every Kubernetes object of the tree, with the file (and line) it came from.
    A repository with Argo CD Applications (or ApplicationSets) is read as Argo CD reads
    it: each Application's source rendered on its own (`toolchain`: where helm and the
    offline charts come from; default: the settings' cache)."""
    root = root.resolve()
    if not root.is_dir():
        raise HarnessError(f"--platform-repo {root}: not a directory")
    # Helm charts' files are templates and defaults, not objects: Argo CD reads them only
    # through `helm template` (an Application whose source is the chart).
    charts = {p.parent.resolve() for p in root.rglob("Chart.yaml")}
    files = [f for f in _yaml_files(root)
             if not any(f.resolve().is_relative_to(c) for c in charts)]
    loaded, problems = _load_tolerant(root, files)
    if any(is_argo(d, "Application", "ApplicationSet") for docs in loaded.values()
           for d in docs):
        return _scan_argo(root, kubectl, loaded, problems, toolchain)
    return _scan_tree(root, kubectl)


def _scan_tree(root: Path, kubectl: str) -> RepoScan:
    """A repository without Applications: its kustomize entry points and plain files (a
    kustomization that does not build stops the scan: nothing else says what to apply)."""
    result = RepoScan(root)
    entry_points = _kustomize_roots(root)
    all_k_dirs = {p.parent.resolve() for name in KUSTOMIZATION for p in root.rglob(name)}
    for kdir in entry_points:
        out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True,
                             text=True, timeout=120, env=offline_env())
        if out.returncode != 0:
            raise ManifestError(f"{kdir}: kustomize build failed: {out.stderr.strip()}")
        for i, obj in enumerate(yaml.safe_load_all(out.stdout)):
            if isinstance(obj, dict):
                result.docs.append(Document(f"{kdir.relative_to(root)} (kustomize)", i + 1,
                                            obj))
        result.kustomizations.append(kdir)
    for f in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        if any(part.startswith(".") for part in f.relative_to(root).parts):
            continue
        if any(f.resolve().is_relative_to(k) for k in all_k_dirs):
            continue  # part of a kustomization: rendered above
        try:
            docs = manifests.load([f])
        except ManifestError as exc:
            raise ManifestError(str(exc).replace(str(f), str(f.relative_to(root)))) from None
        objects = [d for d in docs if d.kind and d.obj.get("apiVersion")]
        if not objects:
            result.skipped.append((str(f.relative_to(root)), "no Kubernetes objects "
                                   "(Helm values or other YAML)"))
        result.docs += objects
    if not result.docs:  # an empty tree, a wrong path: say so rather than apply nothing
        skipped = "; ".join(f for f, _why in result.skipped)
        raise ManifestError(
            f"--platform-repo {root}: holds nothing the harness can apply (no Kubernetes "
            "objects in its *.yaml/*.yml files or kustomizations"
            + (f"; without objects: {skipped}" if skipped else "") + ")")
    return result


def _identity(d: Document) -> str:
    return json.dumps([d.api_version.split("/")[0] if "/" in d.api_version else "", d.kind,
                       d.namespace, d.name, d.obj], sort_keys=True, default=str)


def dedupe(docs: list[Document]) -> list[Document]:
    """The same object rendered by several Applications (one per environment reading the
    same directory) once; objects that differ are all kept."""
    seen: set[str] = set()
    out = []
    for d in docs:
        key = _identity(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _line_of(root: Path, d: Document) -> str:
    return f"{_file_of(root, d)}:{d.line}"


def _produced_in(d: Document) -> Path | None:
    """The directory a rendered document came from (kustomize or helm output)."""
    for suffix in (" (kustomize)", " (helm)"):
        if d.source.endswith(suffix):
            return Path(d.source.removesuffix(suffix))
    return None


def _scan_argo(root: Path, kubectl: str, loaded: dict[Path, list[Document]],
               problems: dict[Path, str], toolchain: Toolchain | None) -> RepoScan:
    """Argo CD's view: start from the Applications and ApplicationSets, render each on
    its own, follow the Applications they render (app-of-apps)."""
    t0 = time.monotonic()
    result = RepoScan(root)
    k_dirs = [d.resolve() for d in _kustomize_dirs(root)]
    for f, msg in problems.items():
        result.findings.append(Finding("warning", str(f.relative_to(root)), f"{msg} (Argo CD "
                                       "fails only the Applications whose source reads it)"))
    for f, docs in loaded.items():
        if not [d for d in docs if d.kind and d.api_version]:
            result.skipped.append((str(f.relative_to(root)), "no Kubernetes objects "
                                   "(Helm values or other YAML)"))
    file_docs = [d for f in loaded for d in loaded[f] if d.kind and d.api_version]
    raw_apps = [d for d in file_docs if is_argo(d, "Application")]
    raw_sets = [d for d in file_docs if is_argo(d, "ApplicationSet")]
    templates = [(s.obj.get("spec") or {}).get("template") or {} for s in raw_sets]
    repo_urls = {str(src.get("repoURL")) for a in [*(d.obj for d in raw_apps), *templates]
                 for src in sources_of(a) if src.get("path") is not None
                 and not src.get("chart") and "{{" not in str(src.get("repoURL"))
                 and (root / str(src["path"])).is_dir()}
    app_dirs = {(root / str(src["path"])).resolve() for a in raw_apps
                for src in sources_of(a.obj) if src.get("path") is not None}
    tc = toolchain

    def tool() -> Toolchain:
        nonlocal tc
        if tc is None:
            from harness.settings import Settings
            from harness.toolchain import Toolchain as _Toolchain

            tc = _Toolchain(Settings().cache_dir)
        return tc

    built_apps: list[Document] = []  # Applications out of entry kustomizations that build
    entry_objects: list[Document] = []
    kproblems: list[Finding] = []
    for kdir in _kustomize_roots(root, kproblems):
        if kdir.resolve() in app_dirs:
            continue  # an Application's source: rendered as that Application
        rel = str(kdir.relative_to(root)) or "."
        out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True,
                             text=True, timeout=120, env=offline_env())
        if out.returncode != 0:
            where = "the repository root" if kdir.resolve() == root else rel
            msg = out.stderr.strip().replace(f"{root}/", "").replace(str(root), ".")
            kproblems.append(Finding(
                "error", f"kustomization {rel}",
                f"kustomize build of {where} failed: {msg} — Argo CD never "
                "renders it (no Application's source is this directory): each Application "
                "is rendered on its own below"))
            continue
        result.kustomizations.append(kdir)
        for i, obj in enumerate(yaml.safe_load_all(out.stdout)):
            if isinstance(obj, dict) and obj.get("kind"):
                d = Document(f"{kdir} (kustomize)", i + 1, obj)
                (built_apps if is_argo(d, "Application", "ApplicationSet")
                 else entry_objects).append(d)
    result.findings += kproblems
    with ArgoRenderer(root, kubectl, repo_urls,
                      helm=lambda: str(tool().binary("helm", "helm")),
                      chart_file=lambda t, a: tool().file(t, a)) as renderer:
        renders: dict[str, AppRender] = {}
        produced: list[tuple[Document, Path]] = [
            (d, root) for d in built_apps if is_argo(d, "Application")]
        queue: list[tuple[Document, str | None, str | None]] = []
        sets_seen: set[str] = set()

        def expand(s: Document, parent: str | None) -> None:
            key = app_key(s)
            if key in sets_seen:
                return
            sets_seen.add(key)
            rep, generated = renderer.expand(s, _line_of(root, s))
            result.appsets.append(rep)
            gen_by = f"ApplicationSet/{s.name} ({_line_of(root, s)})"
            for g in generated:
                queue.append((g, parent, gen_by))

        tentative = [d for d in raw_apps if any(
            Path(d.source).resolve().is_relative_to(k) for k in k_dirs)]
        queue += [(d, None, None) for d in raw_apps if d not in tentative]
        queue += [(d, None, None) for d in built_apps if is_argo(d, "Application")]
        for s in [*raw_sets, *(d for d in built_apps if is_argo(d, "ApplicationSet"))]:
            expand(s, None)

        def drain() -> None:
            while queue:
                d, parent, gen_by = queue.pop(0)
                key = app_key(d)
                if key in renders:
                    if parent and parent != key and parent not in renders[key].parents:
                        renders[key].parents.append(parent)
                    continue
                r = renderer.render(d, _line_of(root, d), gen_by)
                if parent and parent != key:
                    r.parents.append(parent)
                renders[key] = r
                for o in r.objects:
                    if is_argo(o, "Application"):
                        where = _produced_in(o)
                        if where is not None:
                            produced.append((o, where))
                        queue.append((o, key, None))
                    elif is_argo(o, "ApplicationSet"):
                        expand(o, key)

        drain()
        built = _kustomize_closure(result.kustomizations)  # the entry points that built
        for d in tentative:  # raw files of a kustomization: unless a build superseded them
            f = Path(d.source).resolve()
            same = [where for o, where in produced if o.name == d.name
                    and (o.namespace or "argocd") == (d.namespace or "argocd")]
            if f not in built and not any(f.is_relative_to(w.resolve()) for w in same):
                queue.append((d, None, None))
        drain()
    result.apps = list(renders.values())
    for r in result.apps:
        for rs in r.sources:
            if rs.kind == "kustomize" and rs.path is not None and r.status != "failed":
                kdir = (root / rs.path).resolve()
                if kdir not in result.kustomizations:
                    result.kustomizations.append(kdir)
    rendered = [o for r in result.apps for o in r.objects]
    apps_docs = [r.doc for r in result.apps]
    projects = [d for d in file_docs if is_argo(d, "AppProject")]
    result.docs = [*apps_docs, *raw_sets, *projects,
                   *dedupe([o for o in rendered if not is_argo(o)])]
    deployed = {(o.source, o.line) for o in rendered}
    covered = _kustomize_closure(result.kustomizations) | {
        (root / str(rs.path)).resolve() for r in result.apps for rs in r.sources
        if rs.path is not None and rs.in_tree and (rs.kind != "directory" or
                                                   r.status == "failed")}
    orphans = [d for f, docs in loaded.items()
               if not any(f.resolve().is_relative_to(c) for c in covered)
               for d in docs if d.kind and d.api_version and not is_argo(d)
               and not d.api_version.startswith("kustomize.config.k8s.io/")
               and (d.source, d.line) not in deployed]
    result.orphans = [f"{d.kind}/{d.name} ({_line_of(root, d)})" for d in orphans] + [
        f"{d.kind}/{d.name} ({_file_of(root, d)} (kustomize))" for d in entry_objects]
    if result.orphans:
        shown = "; ".join(result.orphans[:10]) + (
            f"; ... {len(result.orphans) - 10} more" if len(result.orphans) > 10 else "")
        result.findings.append(Finding(
            "info", "objects no Application deploys", f"{len(result.orphans)} object(s) in "
            f"the repository that no Application renders (Argo CD never applies them, nor "
            f"does the harness): {shown}"))
    result.render_seconds = time.monotonic() - t0
    return result


def payload(found: RepoScan, env: str | None = None) -> list[Document]:
    """What the harness applies itself. Without Applications: every object. With them:
    what the chosen environment's Applications render (Argo CD's view), the platform
    components the harness runs itself (a Vault chart...) left out."""
    if not found.apps:
        return [d for d in found.docs if not d.api_version.startswith("argoproj.io/")]
    keys = {app_key(a) for a in application_plan(found, env or "dev").expected}
    return dedupe([o for r in found.apps if r.key in keys and not r.platform
                   for o in r.objects if not is_argo(o)])


def remote_refs(scan_: RepoScan) -> dict[str, set[str]]:
    """Vault key -> properties every ExternalSecret reads (data and dataFrom.extract)."""
    refs: dict[str, set[str]] = {}
    for d in scan_.of_kind("ExternalSecret"):
        spec = d.obj.get("spec") or {}
        for item in spec.get("data") or []:
            ref = item.get("remoteRef") or {}
            if ref.get("key"):
                refs.setdefault(ref["key"], set()).add(ref.get("property") or "value")
        for item in spec.get("dataFrom") or []:
            ref = item.get("extract") or {}
            if ref.get("key"):
                refs.setdefault(ref["key"], set()).add("value")
    return refs


def placeholder_seed(refs: dict[str, set[str]]) -> dict[str, dict[str, str]]:
    """A random value for every key/property: "placeholder-<hex>", never a real secret."""
    return {key: {p: f"placeholder-{secrets.token_hex(8)}" for p in sorted(props)}
            for key, props in sorted(refs.items())}


def _namespaced(dyn: Any, d: Document) -> bool | None:
    """Whether the cluster serves this kind namespaced (None: unknown kind/CRD missing —
    validation reports it)."""
    try:
        return bool(dyn.resources.get(api_version=d.api_version, kind=d.kind).namespaced)
    except Exception:  # noqa: BLE001 - ResourceNotFoundError and friends
        return None


def needed_namespaces(scan_: RepoScan, default: str) -> list[str]:
    names = {d.obj.get("metadata", {}).get("namespace") for d in scan_.docs}
    names.discard(None)
    declared = {d.obj["metadata"].get("name") for d in scan_.of_kind("Namespace")}
    return sorted(names - declared)


@dataclass
class AppPlan:
    """Which of a repo's Argo CD Applications the harness applies (roots of the chosen
    environment, and what ApplicationSets generate: no ApplicationSet controller runs
    here), which must then reach Synced (those and every Application they render), what
    cannot be served offline, and the platform components left to the harness."""

    roots: list[Document] = field(default_factory=list)
    expected: list[Document] = field(default_factory=list)
    repo_urls: set[str] = field(default_factory=set)
    branches: tuple[str, ...] = ("main",)
    unservable: dict[str, str] = field(default_factory=dict)  # app name -> why
    other_envs: list[str] = field(default_factory=list)
    platform: dict[str, str] = field(default_factory=dict)  # app name -> why not applied
    generated: list[str] = field(default_factory=list)  # names applied for an ApplicationSet


def _sources(app: Document) -> list[dict[str, Any]]:
    return sources_of(app.obj)


def _in_tree(root: Path, src: dict[str, Any]) -> bool:
    """A source this repository holds (a directory of it), not a chart from elsewhere."""
    return bool(src.get("path")) and not src.get("chart") and (root / str(src["path"])).is_dir()


def _file_of(root: Path, d: Document) -> str:
    src = d.source.removesuffix(" (kustomize)").removesuffix(" (helm)")
    p = Path(src)
    return str(p.relative_to(root)) if p.is_absolute() and p.is_relative_to(root) else src


def _choose(root: Path, apps: list[Document], env: str, plan: AppPlan) -> list[Document]:
    """One Application per name: when several share it (one per environment, as
    app-of-apps repos do), the one whose file path names `env`."""
    by_name: dict[tuple[str, str], list[Document]] = {}
    for a in apps:
        by_name.setdefault((a.namespace or "argocd", a.name), []).append(a)
    chosen_all = []
    for (_ns, name), cands in sorted(by_name.items()):
        if len(cands) > 1:
            chosen = [a for a in cands if env in Path(_file_of(root, a)).parts]
            if len(chosen) != 1:
                raise ManifestError(
                    f"{len(cands)} Applications named {name} "
                    f"({', '.join(_file_of(root, a) for a in cands)}) and none is "
                    f"unambiguously for environment {env!r}: choose with --gitops-env")
            plan.other_envs += [a.ref for a in cands if a is not chosen[0]]
            cands = chosen
        chosen_all.append(cands[0])
    return chosen_all


def application_plan(found: RepoScan, env: str) -> AppPlan:
    """Roots are Applications no other Application renders (read from the renders when
    the scan made them, else: whose file no other Application's source path contains);
    see `_choose` for one name per environment. Applications an ApplicationSet generates
    are applied by the harness too, for the environment their ApplicationSet belongs to."""
    root = found.root
    apps = found.of_kind("Application")
    plan = AppPlan()
    renders = {id(a): found.render_of(a) for a in apps}
    keys = {id(a): app_key(a) for a in apps}

    def generated(a: Document) -> bool:
        r = renders.get(id(a))
        return bool(r and r.generated_by)

    if found.apps:
        def children(a: Document) -> list[Document]:
            return [b for b in apps if b is not a and not generated(b) and (r := renders.get(
                id(b))) is not None and keys[id(a)] in r.parents]

        def is_child(a: Document) -> bool:
            r = renders.get(id(a))
            return bool(r and r.parents)
    else:
        paths = {id(a): [str(s["path"]).strip("/") for s in _sources(a) if _in_tree(root, s)]
                 for a in apps}

        def children(a: Document) -> list[Document]:
            return [b for b in apps if b is not a and any(
                _file_of(root, b).startswith(p + "/") for p in paths[id(a)])]

        child_ids = {id(c) for a in apps for c in children(a)}

        def is_child(a: Document) -> bool:
            return id(a) in child_ids

    def close(roots: list[Document]) -> None:
        todo = list(roots)
        while todo:
            a = todo.pop(0)
            if a not in plan.expected:
                plan.expected.append(a)
                todo += children(a)

    plan.roots = _choose(root, [a for a in apps if not is_child(a) and not generated(a)],
                         env, plan)
    close(plan.roots)
    expected_keys = {keys[id(a)] for a in plan.expected}
    gen = [a for a in apps if generated(a) and (
        not (r := renders[id(a)]) or not r.parents or set(r.parents) & expected_keys)]
    gen_roots = _choose(root, gen, env, plan)
    plan.roots += gen_roots
    plan.generated = [a.name for a in gen_roots]
    close(gen_roots)
    for a in list(plan.expected):
        r = renders.get(id(a))
        if r is not None and r.platform:
            plan.platform[a.name] = (
                f"installs the {r.platform} chart: the harness runs {r.platform} itself, so "
                "this Application is rendered and read (Vault: its server configuration) "
                "but not applied")
            plan.expected.remove(a)
            if a in plan.roots:
                plan.roots.remove(a)
    own = {str(src["repoURL"]) for a in plan.expected for src in _sources(a)
           if _in_tree(root, src)}
    branches = {"main"}
    for a in plan.expected:
        for src in _sources(a):
            ref_only = src.get("ref") and not src.get("path") and not src.get("chart")
            if _in_tree(root, src) or (ref_only and str(src.get("repoURL")) in own):
                plan.repo_urls.add(str(src["repoURL"]))
                rev = str(src.get("targetRevision") or "HEAD")
                if rev != "HEAD":
                    branches.add(rev)
            else:
                what = src.get("chart") or src.get("path") or "(no path)"
                plan.unservable[a.name] = (
                    f"source {src.get('repoURL')} {what} is not in this repository, and "
                    "nothing outside it can be fetched here (no internet)")
    plan.branches = tuple(sorted(branches))
    return plan


def serve_applications(platform: LocalEnvironment, dyn: Any, found: RepoScan, env: str,
                       log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Serve the tree from the harness's Git server (its own repoURLs rewritten to that
    copy, in the Applications and inside the tree), and apply the root Applications (and
    the repository's AppProjects): Argo CD then syncs them and their children as it would
    from the customer's remote."""
    plan = application_plan(found, env)
    base = {"applied": [], "expected": [], "platform": plan.platform,
            "generated": plan.generated, "other_environments": plan.other_envs}
    if not plan.roots:
        return base
    repo = f"byo-{found.root.name}.git"
    served = platform.git.url(repo)
    rewrite = dict.fromkeys(plan.repo_urls, served)
    platform.git.seed(found.root, repo, branches=plan.branches, rewrite=rewrite,
                      replace=True)
    log(f"served {found.root} as {served} (branches {', '.join(plan.branches)})")
    projects = [d for d in found.docs if is_argo(d, "AppProject")]
    local = manifests.rewrite([*projects, *plan.roots],
                              {**platform.git.service_map(), **rewrite})
    manifests.validate(local, dyn)
    manifests.apply(local, dyn, log)
    return {**base, "served_from": served, "branches": list(plan.branches),
            "applied": [d.ref for d in plan.roots],
            "expected": [d.name for d in plan.expected],
            "unservable": plan.unservable}


def _repo_policy(vault: Any, keys: set[str]) -> str:
    """The harness's ESO role reads exactly the keys the applied repositories reference:
    the keys of this one added to those already granted (several repositories applied
    into one environment keep their access)."""
    granted: set[str] = set()
    try:
        old = vault.client().sys.read_policy(REPO_POLICY)
        text = (old.get("data") or old).get("rules") or ""
        granted = set(re.findall(r'path "secret/data/([^"]+)"', text))
    except Exception:  # noqa: BLE001 - no such policy yet (hvac raises InvalidPath)
        pass
    return "".join(f'path "secret/data/{k}" {{\n  capabilities = ["read"]\n}}\n'
                   for k in sorted(granted | keys))


def apply_repo(platform: LocalEnvironment, root: Path, namespace: str = "default",
               seed: Path | None = None, env: str | None = None,
               log: Callable[[str], None] = lambda _m: None,
               found: RepoScan | None = None) -> dict[str, Any]:
    """Scan (unless the caller already did: `found`), seed Vault, create namespaces,
    apply (validated, service-mapped). Returns a report: what was discovered, applied,
    seeded (and whether values are placeholders). With Applications, what is applied is
    what the chosen environment's Applications render (`payload`)."""
    from harness.backends.local.components.eso import VAULT_POLICY, VAULT_ROLE
    from harness.clients.kube import dynamic_client
    from harness.vault_config.seed import parse_seed

    if found is None:
        found = scan(root, str(platform.toolchain.binary("kubernetes", "kubectl")),
                     toolchain=platform.toolchain)
    env = env or platform.settings.profile
    # Argo CD Applications/AppProjects are entry points, not payload: applying every
    # environment's at once would collide (same names). The chosen environment's roots
    # are applied after the payload, served from the harness's Git server.
    entry_points = [d for d in found.docs if d.api_version.startswith("argoproj.io/")]
    docs = [copy.deepcopy(d) for d in payload(found, env)]
    view = RepoScan(found.root, docs=docs)
    dyn = dynamic_client(platform.kube.api_client())
    for d in docs:
        meta = d.obj.setdefault("metadata", {})
        scoped = _namespaced(dyn, d)
        if scoped:
            meta.setdefault("namespace", namespace)
        elif scoped is False and meta.pop("namespace", None):
            # kustomize's namespace transformer also stamps cluster-scoped custom kinds
            # it does not know (ClusterSecretStore); the apiserver has no namespace there.
            log(f"{d.kind}/{meta.get('name')}: cluster-scoped, namespace dropped")
    ns_docs = [Document("<namespaces>", 1, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": n}})
               for n in needed_namespaces(view, namespace)]
    refs = remote_refs(view)
    vault = platform.vault
    if seed is not None:
        values = {path: vals for _mount, path, vals in parse_seed(seed)}
        placeholders: list[str] = []
    else:  # placeholders only where Vault has nothing yet (the runbook's seeds stay)
        values = {k: v for k, v in placeholder_seed(refs).items()
                  if vault.kv_get(k) is None}
        placeholders = sorted(values)
    from kubernetes import client

    from harness.clients.kube import KubeClient

    core = client.CoreV1Api(platform.kube.api_client())
    created = [d for d in ns_docs
               if KubeClient.absent(core.read_namespace, d.obj["metadata"]["name"])]
    if created:
        manifests.apply(created, dyn, log)
    try:
        manifests.validate(docs, dyn)
    except Exception:
        for d in created:  # nothing half-done: the namespaces made for it go again
            core.delete_namespace(d.obj["metadata"]["name"])
        raise
    for key, vals in values.items():
        vault.kv_put(key, **vals)
    if refs:
        # The harness's ESO role reads the customer's keys too (least privilege: exactly
        # the keys the repos reference).
        vault.write_policy(REPO_POLICY, _repo_policy(vault, set(refs)))
        vault.write_kubernetes_role(VAULT_ROLE, "external-secrets", "external-secrets",
                                    [VAULT_POLICY, REPO_POLICY])
    local = manifests.rewrite(docs, platform.service_map())
    manifests.apply(local, dyn, log)
    platform.after_apply(local)
    has_apps = any(d.kind == "Application" for d in entry_points)
    argocd_runs = {"git", "argocd"} <= set(platform.components)
    apps: dict[str, Any] = {"applied": [], "expected": [], "why_not": (
        "no Argo CD in this environment (it runs without the git and argocd components)"
        if has_apps else "the repository has no Argo CD Applications")}
    if has_apps and argocd_runs:
        apps = serve_applications(platform, dyn, found, env, log)
    discovered = found.summary()
    discovered["Application"] = sum(d.kind == "Application" for d in entry_points)
    return {"root": str(found.root), "discovered": discovered,
            "applications": apps,
            "objects": len(docs), "kustomizations": [
                str(k.relative_to(found.root)) for k in found.kustomizations],
            "skipped": found.skipped, "namespaces_created": [d.obj["metadata"]["name"]
                                                             for d in ns_docs],
            "vault_seed": {"written": sorted(values), "placeholders": placeholders,
                           "source": str(seed) if seed else "generated placeholders"},
            "external_secrets": [(d.obj["metadata"]["namespace"], d.obj["metadata"]["name"])
                                 for d in view.of_kind("ExternalSecret")],
            "prometheus_rules": [d.ref for d in view.of_kind("PrometheusRule")],
            "findings": [f.line() for r in found.apps for f in r.findings]
            + [f.line() for f in found.findings]}
