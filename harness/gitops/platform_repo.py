"""Bring your own platform repository: load a customer's GitOps tree — plain YAML and
kustomize directories (rendered with the toolchain's kubectl) — discover what the
harness knows how to judge (ExternalSecrets, SecretStores/ClusterSecretStores,
PrometheusRules, Argo CD Applications), and apply it to a running environment: the
namespaces it needs first, in-cluster addresses through the service map, and Vault
seeded from a file the user gives — or with generated placeholder values for every
remoteRef key/property, marked as placeholders in the report.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.clients import manifests
from harness.clients.manifests import Document, ManifestError
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment

KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
JUDGED = ("ExternalSecret", "SecretStore", "ClusterSecretStore", "PrometheusRule",
          "Application")


@dataclass
class RepoScan:
    root: Path
    docs: list[Document] = field(default_factory=list)
    kustomizations: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.docs if d.kind == kind]

    def summary(self) -> dict[str, int]:
        return {k: len(self.of_kind(k)) for k in JUDGED}


def _kustomize_roots(root: Path) -> list[Path]:
    """Directories with a kustomization that no other kustomization includes (the
    entry points: overlays; their bases are rendered through them)."""
    dirs = sorted({p.parent for name in KUSTOMIZATION for p in root.rglob(name)})
    included: set[Path] = set()
    for d in dirs:
        k = next(d / n for n in KUSTOMIZATION if (d / n).exists())
        try:
            spec = yaml.safe_load(k.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ManifestError(f"{k}: YAML error: {exc}") from None
        for ref in [*spec.get("resources", []), *spec.get("bases", []),
                    *spec.get("components", [])]:
            target = (d / ref).resolve()
            if target.is_dir():
                included.add(target)
    return [d for d in dirs if d.resolve() not in included]


def scan(root: Path, kubectl: str) -> RepoScan:
    """Load every Kubernetes object of the tree, with the file (and line) it came from."""
    root = root.resolve()
    if not root.is_dir():
        raise HarnessError(f"--platform-repo {root}: not a directory")
    result = RepoScan(root)
    entry_points = _kustomize_roots(root)
    all_k_dirs = {p.parent.resolve() for name in KUSTOMIZATION for p in root.rglob(name)}
    for kdir in entry_points:
        out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True,
                             text=True, timeout=120)
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
    environment), which must then reach Synced (those roots and every Application under
    their source paths), and what cannot be served offline."""

    roots: list[Document] = field(default_factory=list)
    expected: list[Document] = field(default_factory=list)
    repo_urls: set[str] = field(default_factory=set)
    branches: tuple[str, ...] = ("main",)
    unservable: dict[str, str] = field(default_factory=dict)  # app name -> why
    other_envs: list[str] = field(default_factory=list)


def _sources(app: Document) -> list[dict[str, Any]]:
    spec = app.obj.get("spec") or {}
    return [spec["source"]] if spec.get("source") else list(spec.get("sources") or [])


def _in_tree(root: Path, src: dict[str, Any]) -> bool:
    """A source this repository holds (a directory of it), not a chart from elsewhere."""
    return bool(src.get("path")) and not src.get("chart") and (root / str(src["path"])).is_dir()


def _file_of(root: Path, d: Document) -> str:
    src = d.source.removesuffix(" (kustomize)")
    p = Path(src)
    return str(p.relative_to(root)) if p.is_absolute() and p.is_relative_to(root) else src


def application_plan(found: RepoScan, env: str) -> AppPlan:
    """Roots are Applications no other Application's source path contains; when several
    roots share a name (one per environment, as app-of-apps repos do), the one whose
    file path names `env` is chosen."""
    root = found.root
    apps = found.of_kind("Application")
    plan = AppPlan()
    paths = {id(a): [str(s["path"]).strip("/") for s in _sources(a) if _in_tree(root, s)]
             for a in apps}

    def children(a: Document) -> list[Document]:
        return [b for b in apps if b is not a and any(
            _file_of(root, b).startswith(p + "/") for p in paths[id(a)])]

    child_ids = {id(c) for a in apps for c in children(a)}
    by_name: dict[tuple[str, str], list[Document]] = {}
    for a in apps:
        if id(a) not in child_ids:
            by_name.setdefault((a.namespace or "argocd", a.name), []).append(a)
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
        plan.roots.append(cands[0])
    todo = list(plan.roots)
    while todo:
        a = todo.pop(0)
        if a not in plan.expected:
            plan.expected.append(a)
            todo += children(a)
    branches = {"main"}
    for a in plan.expected:
        for src in _sources(a):
            if _in_tree(root, src):
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
    copy, in the Applications and inside the tree), and apply the root Applications:
    Argo CD then syncs them and their children as it would from the customer's remote."""
    plan = application_plan(found, env)
    if not plan.roots:
        return {"applied": [], "expected": []}
    repo = f"byo-{found.root.name}.git"
    served = platform.git.url(repo)
    rewrite = dict.fromkeys(plan.repo_urls, served)
    platform.git.seed(found.root, repo, branches=plan.branches, rewrite=rewrite,
                      replace=True)
    log(f"served {found.root} as {served} (branches {', '.join(plan.branches)})")
    local = manifests.rewrite(plan.roots, {**platform.git.service_map(), **rewrite})
    manifests.validate(local, dyn)
    manifests.apply(local, dyn, log)
    return {"served_from": served, "branches": list(plan.branches),
            "applied": [d.ref for d in plan.roots],
            "expected": [d.name for d in plan.expected],
            "unservable": plan.unservable, "other_environments": plan.other_envs}


def apply_repo(platform: LocalEnvironment, root: Path, namespace: str = "default",
               seed: Path | None = None, env: str | None = None,
               log: Callable[[str], None] = lambda _m: None,
               found: RepoScan | None = None) -> dict[str, Any]:
    """Scan (unless the caller already did: `found`), seed Vault, create namespaces,
    apply (validated, service-mapped). Returns a report: what was discovered, applied,
    seeded (and whether values are placeholders)."""
    from kubernetes.dynamic import DynamicClient

    from harness.backends.local.components.eso import VAULT_POLICY, VAULT_ROLE
    from harness.vault_config.seed import parse_seed

    if found is None:
        found = scan(root, str(platform.toolchain.binary("kubernetes", "kubectl")))
    # Argo CD Applications/AppProjects are entry points, not payload: applying every
    # environment's at once would collide (same names). The chosen environment's roots
    # are applied after the payload, served from the harness's Git server.
    entry_points = [d for d in found.docs if d.api_version.startswith("argoproj.io/")]
    found.docs = [d for d in found.docs if d not in entry_points]
    dyn = DynamicClient(platform.kube.api_client())
    for d in found.docs:
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
               for n in needed_namespaces(found, namespace)]
    refs = remote_refs(found)
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
        manifests.validate(found.docs, dyn)
    except Exception:
        for d in created:  # nothing half-done: the namespaces made for it go again
            core.delete_namespace(d.obj["metadata"]["name"])
        raise
    for key, vals in values.items():
        vault.kv_put(key, **vals)
    if refs:
        # The harness's ESO role reads the customer's keys too (least privilege: exactly
        # the keys the repo references).
        policy = "".join(f'path "secret/data/{k}" {{\n  capabilities = ["read"]\n}}\n'
                         for k in sorted(refs))
        vault.write_policy("heracles-platform-repo", policy)
        vault.write_kubernetes_role(VAULT_ROLE, "external-secrets", "external-secrets",
                                    [VAULT_POLICY, "heracles-platform-repo"])
    local = manifests.rewrite(found.docs, platform.service_map())
    manifests.apply(local, dyn, log)
    platform.after_apply(local)
    has_apps = any(d.kind == "Application" for d in entry_points)
    argocd_runs = {"git", "argocd"} <= set(platform.components)
    apps: dict[str, Any] = {"applied": [], "expected": [], "why_not": (
        "no Argo CD in this environment (it runs without the git and argocd components)"
        if has_apps else "the repository has no Argo CD Applications")}
    if has_apps and argocd_runs:
        apps = serve_applications(platform, dyn, RepoScan(found.root, docs=entry_points),
                                  env or platform.settings.profile, log)
    discovered = found.summary()
    discovered["Application"] = sum(d.kind == "Application" for d in entry_points)
    return {"root": str(found.root), "discovered": discovered,
            "applications": apps,
            "objects": len(found.docs), "kustomizations": [
                str(k.relative_to(found.root)) for k in found.kustomizations],
            "skipped": found.skipped, "namespaces_created": [d.obj["metadata"]["name"]
                                                             for d in ns_docs],
            "vault_seed": {"written": sorted(values), "placeholders": placeholders,
                           "source": str(seed) if seed else "generated placeholders"},
            "external_secrets": [(d.obj["metadata"]["namespace"], d.obj["metadata"]["name"])
                                 for d in found.of_kind("ExternalSecret")],
            "prometheus_rules": [d.ref for d in found.of_kind("PrometheusRule")]}
