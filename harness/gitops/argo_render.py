"""A team's repository read the way Argo CD reads it: from its Applications (and the
Applications its ApplicationSets generate), each source rendered on its own as Argo CD's
repo-server would — a directory of plain YAML (recurse/include/exclude), a kustomization
(`kubectl kustomize`, with the Application's kustomize options), a Helm chart from the
repository (`helm template` with the Application's values, valueFiles, parameters,
release name and namespace) or a Helm chart the toolchain holds offline (the charts the
pods/kind backends install). What Argo CD could not render (a broken kustomization, a
chart that does not template, a missing path) becomes a Finding on that Application,
and the others still render; what only the internet could serve (a chart from a remote
Helm repository the toolchain does not hold, a Git repository that is not this one) is
"unservable", named with its chart and repoURL. Every message is redacted.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from harness.clients import manifests
from harness.clients.manifests import Document, ManifestError
from harness.runtime.redact import redact

KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
HELM_KUBE_VERSION = "1.34.0"  # the local control plane's minor, as Argo CD passes it
IN_CLUSTER = "https://kubernetes.default.svc"
RENDER_TIMEOUT = 120.0

# Levels of a finding, most serious first. "error": Argo CD itself could not render the
# source (the Application would show ComparisonError); "unservable": only the internet
# could serve it here; "not-expanded": a generator the harness does not expand.
LEVELS = ("error", "unservable", "not-expanded", "warning", "info")

# Charts the harness runs itself as the platform: an Application installing one is read
# (the Vault configuration comes from it) but never applied next to the harness's own.
PLATFORM_CHARTS = {"vault": "Vault", "openbao": "Vault (OpenBao)",
                   "external-secrets": "External Secrets Operator", "argo-cd": "Argo CD",
                   "prometheus": "Prometheus", "kube-prometheus-stack": "Prometheus",
                   "alertmanager": "Alertmanager"}
VAULT_CHARTS = ("vault", "openbao")

# The Helm repositories of the charts the toolchain holds (harness/backends/install/charts.py
# installs them for the pods/kind backends): chart name -> the repoURLs that name it.
CHART_REPOS = {
    "vault": ("https://helm.releases.hashicorp.com",),
    "external-secrets": ("https://charts.external-secrets.io",),
    "argo-cd": ("https://argoproj.github.io/argo-helm",),
    "prometheus": ("https://prometheus-community.github.io/helm-charts",),
    "alertmanager": ("https://prometheus-community.github.io/helm-charts",),
}

# Kinds without a namespace: Argo CD does not put its destination namespace on them.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "ClusterSecretStore", "ClusterExternalSecret", "PersistentVolume",
                  "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService", "ClusterIssuer",
                  "IngressClass", "RuntimeClass", "CSIDriver", "Node"}


def normalize_url(url: str) -> str:
    """A repoURL compared as Argo CD compares them: no trailing slash nor `.git`,
    scheme and host in lower case."""
    url = url.strip().rstrip("/").removesuffix(".git")
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/]*)(.*)$", url)
    return (m.group(1).lower() + m.group(2).lower() + m.group(3)) if m else url


DEAD_PROXY = "http://127.0.0.1:9"
"""A proxy nothing listens on: a remote kustomize base or chart URL fails at once, on
127.0.0.1, instead of sending traffic off the machine (or hanging until a timeout)."""


def offline_env() -> dict[str, str]:
    """The environment kustomize and helm run with: every HTTP(S) request through the
    dead proxy, git limited to local repositories, never a password prompt."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    return {**env, "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY,
            "ALL_PROXY": DEAD_PROXY, "NO_PROXY": "", "GIT_ALLOW_PROTOCOL": "file",
            "GIT_TERMINAL_PROMPT": "0"}


@dataclass
class Finding:
    """One thing to know about an Application (or the repository): its level (LEVELS),
    what it is about, and the renderer's or the harness's message (redacted)."""

    level: str
    what: str
    message: str

    def __post_init__(self) -> None:
        self.message = redact(self.message)
        self.what = redact(self.what)

    def line(self) -> str:
        return f"[{self.level}] {self.what}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "what": self.what, "message": self.message}


@dataclass
class SourceRender:
    """One source of an Application: what Argo CD would make of it."""

    index: int
    kind: str  # directory | kustomize | helm | helm-chart | plugin | ref | none
    repo_url: str
    path: str | None = None
    chart: str | None = None
    revision: str = "HEAD"
    in_tree: bool = False
    objects: int = 0

    def label(self) -> str:
        what = f"chart {self.chart}" if self.chart else f"path {self.path or '(none)'}"
        return f"{self.kind} {what} @ {self.revision} from {self.repo_url or '(no repoURL)'}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "repoURL": self.repo_url,
                "path": self.path, "chart": self.chart, "targetRevision": self.revision,
                "in_tree": self.in_tree, "objects": self.objects}


@dataclass
class AppRender:
    """An Application rendered on its own: its objects and what went wrong."""

    doc: Document
    file: str  # relative to the repository root, with the line
    generated_by: str | None = None  # "ApplicationSet/<name> (file:line)"
    parents: list[str] = field(default_factory=list)  # keys of Applications rendering it
    sources: list[SourceRender] = field(default_factory=list)
    objects: list[Document] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    platform: str | None = None  # the platform component its chart is (PLATFORM_CHARTS)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def key(self) -> str:
        return app_key(self.doc)

    @property
    def destination_namespace(self) -> str:
        dest = (self.doc.obj.get("spec") or {}).get("destination") or {}
        return str(dest.get("namespace") or "")

    @property
    def status(self) -> str:
        """failed (Argo CD could not render it) | unservable | rendered."""
        levels = {f.level for f in self.findings}
        if "error" in levels:
            return "failed"
        if "unservable" in levels:
            return "unservable"
        return "rendered"

    @property
    def unservable(self) -> list[str]:
        return [f"{f.what}: {f.message}" for f in self.findings if f.level == "unservable"]

    def to_json(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for d in self.objects:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        return {"name": self.name, "namespace": self.doc.namespace or "argocd",
                "file": self.file, "generated_by": self.generated_by,
                "parents": self.parents, "status": self.status, "platform": self.platform,
                "destination_namespace": self.destination_namespace,
                "sources": [s.to_json() for s in self.sources],
                "objects": len(self.objects), "kinds": dict(sorted(kinds.items())),
                "findings": [f.to_json() for f in self.findings],
                "seconds": round(self.seconds, 3)}


@dataclass
class GeneratorReport:
    type: str
    expanded: bool
    applications: int = 0
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "expanded": self.expanded,
                "applications": self.applications, "why": self.why}


@dataclass
class AppSetReport:
    doc: Document
    file: str
    generators: list[GeneratorReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)  # Application names

    def to_json(self) -> dict[str, Any]:
        return {"name": self.doc.name, "file": self.file,
                "generators": [g.to_json() for g in self.generators],
                "generated": self.generated,
                "findings": [f.to_json() for f in self.findings]}


def app_key(d: Document) -> str:
    """Identity of an Application across renders: where it was written and its name."""
    return f"{d.namespace or 'argocd'}/{d.name}@{d.source}:{d.line}"


def is_argo(d: Document, *kinds: str) -> bool:
    return d.api_version.startswith("argoproj.io/") and (not kinds or d.kind in kinds)


def sources_of(app: dict[str, Any]) -> list[dict[str, Any]]:
    """The Application's sources: `sources` when set (Argo CD then ignores `source`)."""
    spec = app.get("spec") or {}
    many = spec.get("sources")
    if isinstance(many, list) and many:
        return [s for s in many if isinstance(s, dict)]
    one = spec.get("source")
    return [one] if isinstance(one, dict) else []


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Argo CD's directory include/exclude glob (gobwas/glob without separators): `*`
    and `**` match anything (slashes too), `?` one character, `{a,b}` alternatives."""
    out, i, depth = "", 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out += ".*"
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
        elif c == "?":
            out += "."
        elif c == "{":
            out += "(?:"
            depth += 1
        elif c == "}" and depth:
            out += ")"
            depth -= 1
        elif c == "," and depth:
            out += "|"
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out += re.escape(c)
            else:
                body = pattern[i + 1:end].replace("!", "^", 1) if pattern[i + 1:i + 2] == "!" \
                    else pattern[i + 1:end]
                out += f"[{body}]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(f"^{out}$")


def glob_match(pattern: str, text: str) -> bool:
    return bool(_glob_regex(pattern).match(text))


def _path_glob(pattern: str, text: str) -> bool:
    """Git generators' path patterns: `*` stays within one path segment, `**` crosses."""
    rx = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            rx += ".*"
            i += 2
            continue
        c = pattern[i]
        rx += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        i += 1
    return bool(re.match(f"^{rx}$", text))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _sanitize(name: str) -> str:
    """Argo CD's basenameNormalized / nameNormalized: a DNS-1123 label."""
    return re.sub(r"[^a-z0-9.-]", "-", name.lower()).strip("-.")


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Non-goTemplate parameters: nested keys joined with dots, values as text."""
    out: dict[str, str] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, str) else json.dumps(v) if isinstance(
                v, list | bool) or v is None else str(v)
    return out


TAG = re.compile(r"\{\{(.*?)\}\}", re.S)
GO_LOOKUP = re.compile(r"^\s*-?\s*((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*-?\s*$")


class TemplateError(Exception):
    """An ApplicationSet template the harness cannot expand offline."""


def _render_string(text: str, params: dict[str, Any], go: bool,
                   unresolved: list[str]) -> str:
    def fast(m: re.Match[str]) -> str:
        key = m.group(1).strip()
        flat = params  # already flattened
        if key in flat:
            return str(flat[key])
        unresolved.append(key)
        return m.group(0)

    def gotpl(m: re.Match[str]) -> str:
        expr = m.group(1)
        lookup = GO_LOOKUP.match(expr)
        if not lookup:
            raise TemplateError(f"go template expression {{{{{expr.strip()}}}}} (functions, "
                                "pipes and conditionals are not evaluated offline)")
        cur: Any = params
        for part in lookup.group(1).strip(".").split("."):
            if not isinstance(cur, dict) or part not in cur:
                unresolved.append(lookup.group(1))
                return "<no value>"
            cur = cur[part]
        return cur if isinstance(cur, str) else json.dumps(cur) if isinstance(
            cur, list | dict | bool) else str(cur)

    return TAG.sub(gotpl if go else fast, text)


def render_template(template: Any, params: dict[str, Any], go: bool,
                    unresolved: list[str]) -> Any:
    """The ApplicationSet template with its parameters put in every string (keys too)."""
    if isinstance(template, dict):
        return {_render_string(str(k), params, go, unresolved):
                render_template(v, params, go, unresolved) for k, v in template.items()}
    if isinstance(template, list):
        return [render_template(v, params, go, unresolved) for v in template]
    if isinstance(template, str):
        return _render_string(template, params, go, unresolved)
    return template


@dataclass
class OfflineChart:
    name: str
    tool: str
    archive: str
    subcharts: dict[str, tuple[str, str] | None]


def offline_charts() -> dict[str, OfflineChart]:
    """Chart name -> where the toolchain keeps it: the releases the pods/kind backends
    install (harness.backends.install.charts), plus the subcharts they ship."""
    from harness.backends.install.charts import charts

    out: dict[str, OfflineChart] = {}
    for c in charts():
        name = c.archive.removesuffix(".tgz")
        out[name] = OfflineChart(name, c.tool, c.archive, dict(c.subcharts))
        for sub, where in c.subcharts.items():
            if where is not None:
                out.setdefault(sub, OfflineChart(sub, where[0], where[1], {}))
    return out


class RenderFailed(Exception):
    """A source Argo CD could not render: the message is what the renderer said."""


class Unservable(Exception):
    """A source only the internet could serve here."""


class ArgoRenderer:
    """Renders Applications of one repository (a context manager: its scratch space is
    a temporary directory — the repository itself is never written)."""

    def __init__(self, root: Path, kubectl: str, repo_urls: set[str] | None = None,
                 helm: str | Callable[[], str] | None = None,
                 chart_file: Callable[[str, str], Path] | None = None) -> None:
        self.root = root.resolve()
        self.kubectl = kubectl
        self.repo_urls = {normalize_url(u) for u in (repo_urls or set())}
        self._helm = helm
        self._chart_file = chart_file
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._copy: Path | None = None
        self._charts: dict[str, Path] = {}

    def __enter__(self) -> ArgoRenderer:
        self._tmp = tempfile.TemporaryDirectory(prefix="heracles-argo-render-")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ---- scratch space --------------------------------------------------------------
    @property
    def tmp(self) -> Path:
        if self._tmp is None:
            self.__enter__()
        assert self._tmp is not None
        return Path(self._tmp.name)

    def scratch(self, name: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp))
        return d

    def repo_copy(self) -> Path:
        """A copy of the repository to edit (kustomize options, helm dependencies) as
        Argo CD edits its own checkout; made once, on demand."""
        if self._copy is None:
            self._copy = self.tmp / "repo"
            shutil.copytree(self.root, self._copy, symlinks=True,
                            ignore=shutil.ignore_patterns(".git"))
        return self._copy

    @cached_property
    def helm(self) -> str:
        if self._helm is None:
            from harness.settings import Settings
            from harness.toolchain import Toolchain

            return str(Toolchain(Settings().cache_dir).binary("helm", "helm"))
        return self._helm() if callable(self._helm) else self._helm

    def chart_file(self, tool: str, archive: str) -> Path:
        if self._chart_file is None:
            from harness.settings import Settings
            from harness.toolchain import Toolchain

            return Toolchain(Settings().cache_dir).file(tool, archive)
        return self._chart_file(tool, archive)

    def helm_env(self) -> dict[str, str]:
        """Helm's caches and config in the scratch space: nothing from ~/.config, no
        repository configured (nothing is fetched)."""
        base = self.tmp / "helm-home"
        return {**offline_env(), "HELM_CACHE_HOME": str(base / "cache"),
                "HELM_CONFIG_HOME": str(base / "config"),
                "HELM_DATA_HOME": str(base / "data")}

    def relative(self, message: str) -> str:
        """A renderer's message with the repository's (and the scratch space's) absolute
        paths made relative: the reader knows which repository it is."""
        for base, shown in ((str(self.tmp / "repo"), ""), (str(self.tmp), "<work>"),
                            (str(self.root), "")):
            message = message.replace(base + "/", f"{shown}/" if shown else "")
            message = message.replace(base, shown or ".")
        return message

    # ---- where a source lives -------------------------------------------------------
    def is_this_repo(self, url: str) -> bool:
        return normalize_url(url) in self.repo_urls

    def in_tree(self, src: dict[str, Any]) -> bool:
        """A directory of this repository (today's rule: its path exists here), or a
        path of a repoURL this repository's Applications name as their own."""
        path = src.get("path")
        if src.get("chart") or path is None:
            return False
        return (self.root / str(path)).is_dir() or self.is_this_repo(str(src.get("repoURL")))

    # ---- Applications ---------------------------------------------------------------
    def render(self, app: Document, file: str, generated_by: str | None = None) -> AppRender:
        """Every source of the Application, as Argo CD's repo-server would."""
        t0 = time.monotonic()
        out = AppRender(app, file, generated_by)
        srcs = sources_of(app.obj)
        spec = app.obj.get("spec") or {}
        if not srcs:
            out.findings.append(Finding("error", "spec.source", "the Application has no "
                                        "source (spec.source or spec.sources)"))
        refs = {str(s["ref"]): s for s in srcs if s.get("ref")}
        dest_ns = str((spec.get("destination") or {}).get("namespace") or "")
        multi = bool(spec.get("sources"))
        for i, src in enumerate(srcs):
            where = f"spec.sources[{i}]" if multi else "spec.source"
            sr = SourceRender(i, "none", str(src.get("repoURL") or ""),
                              str(src["path"]) if src.get("path") is not None else None,
                              str(src["chart"]) if src.get("chart") else None,
                              str(src.get("targetRevision") or "HEAD"))
            out.sources.append(sr)
            try:
                docs = self._source(src, sr, out, refs, dest_ns, app.name, where)
            except RenderFailed as exc:
                out.findings.append(Finding("error", f"{where} ({sr.label()})",
                                            self.relative(str(exc))))
                continue
            except Unservable as exc:
                out.findings.append(Finding("unservable", f"{where} ({sr.label()})",
                                            self.relative(str(exc))))
                continue
            sr.objects = len(docs)
            out.objects += docs
        if out.status == "failed":  # Argo CD renders nothing of an Application in error
            out.objects = []
        for d in out.objects:
            meta = d.obj.get("metadata")
            if isinstance(meta, dict) and dest_ns and not meta.get("namespace") \
                    and d.kind not in CLUSTER_SCOPED:
                meta["namespace"] = dest_ns
        out.seconds = time.monotonic() - t0
        return out

    def _source(self, src: dict[str, Any], sr: SourceRender, app: AppRender,
                refs: dict[str, dict[str, Any]], dest_ns: str, name: str,
                where: str) -> list[Document]:
        if src.get("chart"):
            sr.kind = "helm-chart"
            chart = str(src["chart"])
            if chart in PLATFORM_CHARTS:
                app.platform = PLATFORM_CHARTS[chart]
            return self._remote_chart(src, sr, app, refs, dest_ns, name, where)
        if src.get("path") is None:
            if src.get("ref"):
                sr.kind = "ref"
                return []
            raise RenderFailed("neither path nor chart: Argo CD has nothing to render")
        explicit = [k for k in ("kustomize", "helm", "directory", "plugin")
                    if src.get(k) is not None]
        if len(explicit) > 1:
            raise RenderFailed("multiple application sources defined: "
                               + ",".join(k.capitalize() for k in explicit))
        path = str(src["path"]).strip("/") or "."
        sr.in_tree = self.in_tree(src)
        if not sr.in_tree:
            raise Unservable(f"source {src.get('repoURL')} {path} is not in this repository, "
                             "and nothing outside it can be fetched here (no internet)")
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise RenderFailed(f"{path}: app path is outside the repository")
        if not target.is_dir():
            raise RenderFailed(f"{path}: app path does not exist")
        kind = explicit[0] if explicit else (
            "kustomize" if any((target / k).exists() for k in KUSTOMIZATION)
            else "helm" if (target / "Chart.yaml").exists() else "directory")
        sr.kind = kind
        if kind == "plugin":
            plugin = (src.get("plugin") or {}).get("name") or "(discovered)"
            raise Unservable(f"config management plugin {plugin}: the harness runs no "
                             "plugin sidecar")
        if kind == "kustomize":
            return self._kustomize(target, path, src.get("kustomize") or {}, app)
        if kind == "helm":
            chart_meta = _chart_meta(target)
            cname = str(chart_meta.get("name") or "")
            deps = {str(d.get("name")) for d in chart_meta.get("dependencies") or []
                    if isinstance(d, dict)}
            platform = next((c for c in (cname, *sorted(deps)) if c in PLATFORM_CHARTS), None)
            if platform:
                app.platform = PLATFORM_CHARTS[platform]
            chart_dir = self._local_chart(target, path, app)
            return self._helm_template(chart_dir, src.get("helm") or {}, refs, dest_ns, name,
                                       app, base=target, label=f"{path} (helm)")
        return self._directory(target, path, src.get("directory") or {}, app)

    # ---- directory --------------------------------------------------------------------
    def _directory(self, target: Path, path: str, opts: dict[str, Any],
                   app: AppRender) -> list[Document]:
        recurse = bool(opts.get("recurse"))
        include, exclude = str(opts.get("include") or ""), str(opts.get("exclude") or "")
        if opts.get("jsonnet"):
            app.findings.append(Finding("warning", f"{path} (directory.jsonnet)",
                                        "jsonnet options are not applied by the harness"))
        files = sorted(target.rglob("*") if recurse else target.glob("*"))
        docs: list[Document] = []
        for f in files:
            rel_parts = f.relative_to(target).parts
            if not f.is_file() or ".git" in rel_parts:
                continue
            rel = f.relative_to(target).as_posix()
            if f.suffix in (".jsonnet", ".libsonnet"):
                if not exclude or not glob_match(exclude, rel):
                    app.findings.append(Finding("unservable", f"{path}/{rel}",
                                                "jsonnet is not rendered by the harness"))
                continue
            if f.suffix not in MANIFEST_SUFFIXES:
                continue
            if exclude and glob_match(exclude, rel):
                continue
            if include and not glob_match(include, rel):
                continue
            try:
                loaded = manifests.load([f])
            except ManifestError as exc:
                text = f.read_text(errors="replace")
                if all(k in text for k in ("apiVersion:", "kind:", "metadata:")):
                    msg = str(exc).replace(str(f), f"{path}/{rel}").removeprefix(
                        "invalid manifests, nothing applied: ")
                    raise RenderFailed(f"Failed to unmarshal {rel!r}: {msg}") from None
                continue  # an unrelated YAML file: Argo CD ignores it
            docs += [d for d in loaded if d.kind and d.api_version]
        return docs

    # ---- kustomize --------------------------------------------------------------------
    def _kustomize(self, target: Path, path: str, opts: dict[str, Any],
                   app: AppRender) -> list[Document]:
        build_dir = target
        if opts:
            build_dir = self.repo_copy() / target.relative_to(self.root)
            self._kustomize_edit(build_dir, opts, path, app)
        out = subprocess.run([self.kubectl, "kustomize", str(build_dir)], capture_output=True,
                             text=True, timeout=RENDER_TIMEOUT, env=offline_env())
        if out.returncode != 0:
            msg = out.stderr.strip().replace(str(self.repo_copy()) if self._copy else "\0",
                                             str(self.root))
            raise RenderFailed(f"kustomize build {path} failed: {msg}")
        return [Document(f"{target} (kustomize)", i + 1, obj)
                for i, obj in enumerate(yaml.safe_load_all(out.stdout)) if isinstance(obj, dict)]

    def _kustomize_edit(self, build_dir: Path, opts: dict[str, Any], path: str,
                        app: AppRender) -> None:
        """What Argo CD's `kustomize edit set ...` does to its checkout, done to the copy."""
        kfile = next((build_dir / k for k in KUSTOMIZATION if (build_dir / k).exists()), None)
        if kfile is None:
            raise RenderFailed(f"{path}: no kustomization file")
        try:
            spec = yaml.safe_load(kfile.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RenderFailed(f"{path}/{kfile.name}: YAML error: {exc}") from None
        for key in ("namePrefix", "nameSuffix", "namespace"):
            if opts.get(key):
                spec[key] = opts[key]
        for key in ("commonLabels", "commonAnnotations"):
            if opts.get(key):
                spec[key] = {**(spec.get(key) or {}), **opts[key]}
        for img in opts.get("images") or []:
            text = str(img)
            name, _, rest = text.partition("=")
            entry: dict[str, str] = {"name": name}
            ref = rest or name
            if "@" in ref:
                ref, entry["digest"] = ref.split("@", 1)
            elif ":" in ref.rsplit("/", 1)[-1]:
                ref, entry["newTag"] = ref.rsplit(":", 1)
            if rest and ref != name:
                entry["newName"] = ref
            spec.setdefault("images", []).append(entry)
        for key in ("patches", "components", "replicas"):
            if opts.get(key):
                spec.setdefault(key, []).extend(opts[key])
        unknown = sorted(set(opts) - {"namePrefix", "nameSuffix", "namespace", "commonLabels",
                                      "commonAnnotations", "images", "patches", "components",
                                      "replicas", "version", "forceCommonLabels",
                                      "forceCommonAnnotations"})
        if unknown:
            app.findings.append(Finding("warning", f"{path} (kustomize options)",
                                        f"not applied by the harness: {', '.join(unknown)}"))
        kfile.write_text(yaml.safe_dump(spec, sort_keys=False))

    # ---- Helm -------------------------------------------------------------------------
    def _local_chart(self, target: Path, path: str, app: AppRender) -> Path:
        """The repository's chart, its dependencies present: `charts/` as committed, file://
        dependencies copied in (as `helm dependency build` would), the toolchain's charts
        for the others it holds; any other is unservable."""
        meta = _chart_meta(target)
        deps = [d for d in meta.get("dependencies") or [] if isinstance(d, dict)]
        missing = [d for d in deps if not _dep_present(target, d)]
        if not missing:
            return target
        copy_dir = self.repo_copy() / target.relative_to(self.root)
        held = offline_charts()
        for d in missing:
            name, repo = str(d.get("name")), str(d.get("repository") or "")
            if repo.startswith("file://"):  # what `helm dependency build` would copy
                source = (target / repo.removeprefix("file://")).resolve()
                if not source.is_relative_to(self.root) or not (source / "Chart.yaml").is_file():
                    raise RenderFailed(f"Helm dependency {name} {repo}: no chart there in "
                                       "the repository")
                shutil.copytree(source, copy_dir / "charts" / name, symlinks=True)
                continue
            if name in held and normalize_url(repo) in {normalize_url(u) for u in
                                                         CHART_REPOS.get(name, ())}:
                self._unpack_chart(held[name], copy_dir / "charts")
                app.findings.append(Finding("info", f"{path} dependency {name}",
                                            f"from the toolchain's chart ({held[name].tool}), "
                                            f"asked {d.get('version')} from {repo}"))
                continue
            raise Unservable(f"Helm dependency {name} {d.get('version', '')} from {repo}: "
                             "not held by the toolchain, and nothing can be fetched here "
                             "(no internet)")
        return copy_dir

    def _unpack_chart(self, chart: OfflineChart, into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(self.chart_file(chart.tool, chart.archive)) as tar:
            tar.extractall(into, filter="data")
        return into / chart.name

    def _remote_chart(self, src: dict[str, Any], sr: SourceRender, app: AppRender,
                      refs: dict[str, dict[str, Any]], dest_ns: str, name: str,
                      where: str) -> list[Document]:
        chart, repo = str(src["chart"]), str(src.get("repoURL") or "")
        held = offline_charts()
        known = {normalize_url(u) for u in CHART_REPOS.get(chart, ())}
        if chart not in held or normalize_url(repo) not in known:
            hint = (f"; the toolchain's {chart} is the one from {CHART_REPOS[chart][0]}"
                    if chart in CHART_REPOS else
                    f"; it holds {', '.join(sorted(CHART_REPOS))} from their upstream "
                    "repositories")
            raise Unservable(f"Helm chart {chart} {sr.revision} from {repo}: not held by the "
                             f"toolchain{hint}, and nothing can be fetched here (no internet)")
        if chart not in self._charts:
            root = self._unpack_chart(held[chart], self.scratch(f"chart-{chart}"))
            self._stub_subcharts(root, held[chart])
            self._charts[chart] = root
        root = self._charts[chart]
        version = str(_chart_meta(root).get("version") or "")
        if sr.revision not in (version, f"v{version}", "HEAD", "*"):
            app.findings.append(Finding("warning", f"{where} (chart {chart})",
                                        f"rendered with the toolchain's chart {version}; the "
                                        f"Application asks for {sr.revision}"))
        return self._helm_template(root, src.get("helm") or {}, refs, dest_ns, name, app,
                                   base=root, label=f"{chart} {version} (helm)",
                                   values_root=root)

    def _stub_subcharts(self, root: Path, chart: OfflineChart) -> None:
        """Declared dependencies the toolchain lacks get a Chart.yaml stub (as the chart
        backends do): Helm insists they exist even when disabled."""
        meta = _chart_meta(root)
        for dep in meta.get("dependencies") or []:
            dname = str(dep.get("name"))
            dest = root / "charts" / dname
            if dest.exists() or _dep_present(root, dep):
                continue
            where = chart.subcharts.get(dname)
            if where is not None:
                with tarfile.open(self.chart_file(*where)) as tar:
                    tar.extractall(root / "charts", filter="data")
                continue
            dest.mkdir(parents=True)
            (dest / "Chart.yaml").write_text(yaml.safe_dump(
                {"apiVersion": "v2", "name": dname,
                 "version": str(dep.get("version", "0.0.0")).strip("*~^").rstrip(".")
                 or "0.0.0"}))

    def _value_file(self, vf: str, base: Path, refs: dict[str, dict[str, Any]],
                    values_root: Path) -> Path:
        if vf.startswith("$"):
            ref, _, rest = vf[1:].partition("/")
            src = refs.get(ref)
            if src is None:
                raise RenderFailed(f"valueFiles {vf}: no source with ref {ref!r}")
            url = str(src.get("repoURL") or "")
            if not (self.is_this_repo(url) or (self.root / rest).is_file()):
                raise Unservable(f"valueFiles {vf}: ref {ref} is {url}, not this repository: "
                                 "nothing outside it can be fetched here (no internet)")
            target = (self.root / rest).resolve()
            if not target.is_relative_to(self.root.resolve()):
                raise RenderFailed(f"valueFiles {vf}: resolves outside the repository")
            return target
        if re.match(r"^[a-z]+://", vf):
            raise Unservable(f"valueFiles {vf}: a URL, nothing can be fetched here "
                             "(no internet)")
        target = (base / vf).resolve()
        if not target.is_relative_to(values_root):
            raise RenderFailed(f"valueFiles {vf}: resolves outside the repository")
        return target

    def _helm_template(self, chart_dir: Path, opts: dict[str, Any],
                       refs: dict[str, dict[str, Any]], dest_ns: str, name: str,
                       app: AppRender, base: Path, label: str,
                       values_root: Path | None = None) -> list[Document]:
        """`helm template` as Argo CD runs it: valueFiles, then the inline values
        (valuesObject wins over values), then parameters; CRDs included."""
        values_root = values_root or self.root
        release = str(opts.get("releaseName") or name)
        args = [self.helm, "template", release, str(chart_dir), "--namespace",
                dest_ns or "default", "--kube-version", HELM_KUBE_VERSION]
        for vf in opts.get("valueFiles") or []:
            path = self._value_file(str(vf), base, refs, values_root)
            if not path.is_file():
                if opts.get("ignoreMissingValueFiles"):
                    app.findings.append(Finding("info", f"valueFiles {vf}", "missing, "
                                                "ignored (ignoreMissingValueFiles)"))
                    continue
                raise RenderFailed(f"valueFiles {vf}: no such file "
                                   f"({_rel(path, self.root)})")
            args += ["--values", str(path)]
        inline: Any = opts.get("valuesObject")
        if inline is None and opts.get("values"):
            raw = opts["values"]
            if isinstance(raw, str):
                try:
                    inline = yaml.safe_load(raw)
                except yaml.YAMLError as exc:
                    raise RenderFailed(f"helm.values is not YAML: {exc}") from None
            else:
                inline = raw
        if inline is not None:
            if not isinstance(inline, dict):
                raise RenderFailed("helm values must be a mapping, got "
                                   f"{type(inline).__name__}")
            vals = self.scratch("values") / "values.yaml"
            vals.write_text(yaml.safe_dump(inline))
            args += ["--values", str(vals)]
        for p in opts.get("parameters") or []:
            if not isinstance(p, dict) or not p.get("name"):
                continue
            flag = "--set-string" if p.get("forceString") else "--set"
            args += [flag, f"{p['name']}={p.get('value', '')}"]
        for p in opts.get("fileParameters") or []:
            if isinstance(p, dict) and p.get("name") and p.get("path"):
                target = (base / str(p["path"])).resolve()
                if not target.is_relative_to(values_root.resolve()):
                    # what Argo CD's repo-server refuses too: no file of the host
                    raise RenderFailed(f"fileParameters {p['name']}: {p['path']} resolves "
                                       "outside the repository")
                args += ["--set-file", f"{p['name']}={target}"]
        args.append("--skip-crds" if opts.get("skipCrds") else "--include-crds")
        if opts.get("skipSchemaValidation"):
            args.append("--skip-schema-validation")
        out = subprocess.run(args, capture_output=True, text=True, env=self.helm_env(),
                             timeout=RENDER_TIMEOUT)
        if out.returncode != 0:
            msg = out.stderr.strip()
            for p in (str(self._copy) if self._copy else None, str(self.tmp)):
                if p:
                    msg = msg.replace(p, "<work>" if p == str(self.tmp) else str(self.root))
            raise RenderFailed(f"helm template failed: {msg}")
        try:
            objs = list(yaml.safe_load_all(out.stdout))
        except yaml.YAMLError as exc:
            raise RenderFailed(f"helm template produced invalid YAML: {exc}") from None
        return [Document(f"{base} (helm)", i + 1, o) for i, o in enumerate(objs)
                if isinstance(o, dict) and o.get("kind")]

    # ---- ApplicationSets --------------------------------------------------------------
    def expand(self, appset: Document, file: str) -> tuple[AppSetReport, list[Document]]:
        """The Applications an ApplicationSet generates, for the generators that can be
        expanded offline: list, git directories/files against this repository, clusters
        (the one in-cluster destination). Others are named as not expanded."""
        rep = AppSetReport(appset, file)
        spec = appset.obj.get("spec") or {}
        go = bool(spec.get("goTemplate"))
        strict = "missingkey=error" in (spec.get("goTemplateOptions") or [])
        template = spec.get("template") or {}
        apps: list[Document] = []
        if spec.get("templatePatch"):
            rep.findings.append(Finding("not-expanded", "spec.templatePatch",
                                        "not applied by the harness"))
        for i, gen in enumerate(spec.get("generators") or []):
            if not isinstance(gen, dict) or not gen:
                continue
            gtype = next((k for k in gen if k not in ("selector", "values")), "?")
            body = gen.get(gtype) or {}
            try:
                params = self._generator(gtype, body, go)
            except TemplateError as exc:
                rep.generators.append(GeneratorReport(gtype, False, why=str(exc)))
                rep.findings.append(Finding("not-expanded", f"generators[{i}] ({gtype})",
                                            str(exc)))
                continue
            if gen.get("selector"):
                rep.findings.append(Finding("warning", f"generators[{i}].selector",
                                            "not applied: every element is generated"))
            tpl = _deep_merge(template, body.get("template") or {}) \
                if isinstance(body, dict) else template
            made = 0
            for n, p in enumerate(params):
                values = {**p, "values": {**(gen.get("values") or {})}} if go else {
                    **_flatten(p), **{f"values.{k}": str(v) for k, v in
                                      (gen.get("values") or {}).items()}}
                unresolved: list[str] = []
                try:
                    obj = render_template(tpl, values, go, unresolved)
                except TemplateError as exc:
                    rep.findings.append(Finding("not-expanded", f"generators[{i}] element {n}",
                                                str(exc)))
                    continue
                if unresolved and (strict or not go):
                    rep.findings.append(Finding(
                        "error" if strict else "warning", f"generators[{i}] element {n}",
                        f"unresolved template parameter(s): {', '.join(sorted(set(unresolved)))}"))
                    if strict:
                        continue
                obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                       **{k: v for k, v in obj.items() if k in ("metadata", "spec")}}
                meta = obj.setdefault("metadata", {})
                if not isinstance(meta, dict) or not meta.get("name"):
                    rep.findings.append(Finding("error", f"generators[{i}] element {n}",
                                                "the template gives no metadata.name"))
                    continue
                meta.setdefault("namespace", appset.namespace or "argocd")
                apps.append(Document(appset.source, appset.line, obj))
                rep.generated.append(str(meta["name"]))
                made += 1
            rep.generators.append(GeneratorReport(gtype, True, made))
        return rep, apps

    def _generator(self, gtype: str, body: Any, go: bool) -> list[dict[str, Any]]:
        if gtype == "list":
            elements = list(body.get("elements") or [])
            if body.get("elementsYaml"):
                try:
                    extra = yaml.safe_load(str(body["elementsYaml"])) or []
                except yaml.YAMLError as exc:
                    raise TemplateError(f"elementsYaml is not YAML: {exc}") from None
                elements += list(extra) if isinstance(extra, list) else []
            return [e for e in elements if isinstance(e, dict)]
        if gtype == "clusters":
            if body.get("selector"):
                raise TemplateError("clusters generator with a selector: the harness has "
                                    "one cluster (in-cluster) and no cluster labels")
            return [{"name": "in-cluster", "nameNormalized": "in-cluster",
                     "server": IN_CLUSTER, "metadata": {"labels": {}, "annotations": {}}}]
        if gtype == "git":
            url = str(body.get("repoURL") or "")
            if not self.is_this_repo(url):
                raise TemplateError(f"git generator on {url}: not this repository (its own "
                                    "Applications name "
                                    f"{', '.join(sorted(self.repo_urls)) or 'no repoURL'})")
            if body.get("directories"):
                return self._git_directories(body["directories"], go)
            if body.get("files"):
                return self._git_files(body["files"], go)
            raise TemplateError("git generator without directories or files")
        raise TemplateError(f"{gtype} generator: not expanded by the harness (it expands "
                            "list, git directories/files on this repository and clusters)")

    def _path_params(self, rel: str, go: bool, file: bool = False) -> dict[str, Any]:
        p = Path(rel)
        d = p.parent if file else p
        segments = list(d.parts)
        params: dict[str, Any] = {"path": str(d.as_posix()), "basename": d.name,
                                  "basenameNormalized": _sanitize(d.name),
                                  "segments": segments}
        if file:
            params.update(filename=p.name, filenameNormalized=_sanitize(p.name))
        if go:
            return {"path": params}
        flat = {"path": params["path"], "path.basename": d.name,
                "path.basenameNormalized": _sanitize(d.name)}
        if file:
            flat.update({"path.filename": p.name, "path.filenameNormalized": _sanitize(p.name)})
        flat.update({f"path[{i}]": s for i, s in enumerate(segments)})
        return flat

    def _dirs(self) -> Iterator[str]:
        for d in sorted(self.root.rglob("*")):
            if d.is_dir() and not any(x.startswith(".") for x in d.relative_to(self.root).parts):
                yield d.relative_to(self.root).as_posix()

    def _git_directories(self, entries: list[Any], go: bool) -> list[dict[str, Any]]:
        inc = [str(e.get("path")) for e in entries if isinstance(e, dict) and not e.get("exclude")]
        exc = [str(e.get("path")) for e in entries if isinstance(e, dict) and e.get("exclude")]
        found = [d for d in self._dirs() if any(_path_glob(p, d) for p in inc)
                 and not any(_path_glob(p, d) for p in exc)]
        return [self._path_params(d, go) for d in found]

    def _git_files(self, entries: list[Any], go: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for e in entries:
            pattern = str((e or {}).get("path") or "")
            for f in sorted(self.root.rglob("*")):
                rel = f.relative_to(self.root).as_posix()
                if not f.is_file() or not _path_glob(pattern, rel):
                    continue
                try:
                    data = yaml.safe_load(f.read_text())
                except yaml.YAMLError as exc:
                    raise TemplateError(f"git files generator: {rel}: not YAML/JSON: "
                                        f"{exc}") from None
                for item in data if isinstance(data, list) else [data]:
                    if isinstance(item, dict):
                        out.append({**(item if go else _flatten(item)),
                                    **self._path_params(rel, go, file=True)})
        return out


def _rel(p: Path, root: Path) -> str:
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def _chart_meta(chart_dir: Path) -> dict[str, Any]:
    """Chart.yaml, with the dependencies of a v1 chart's requirements.yaml."""
    try:
        meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RenderFailed(f"{chart_dir.name}/Chart.yaml: {exc}") from None
    if not isinstance(meta, dict):
        raise RenderFailed(f"{chart_dir.name}/Chart.yaml: not a mapping")
    req = chart_dir / "requirements.yaml"
    if not meta.get("dependencies") and req.is_file():
        try:
            meta["dependencies"] = (yaml.safe_load(req.read_text()) or {}).get("dependencies")
        except yaml.YAMLError:
            pass
    return meta


def _dep_present(chart_dir: Path, dep: dict[str, Any]) -> bool:
    name = str(dep.get("name"))
    charts = chart_dir / "charts"
    return (charts / name / "Chart.yaml").is_file() or any(charts.glob(f"{name}-*.tgz"))
