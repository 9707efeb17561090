"""`harness apply`: load → validate everything → rewrite in-cluster addresses → apply.

Nothing is applied unless every document is valid: a YAML error names the file and line,
an unknown kind or a missing CRD names the object. CustomResourceDefinitions in the same
input count as known kinds; they are applied (and awaited until Established) before the
objects that need them. Service addresses such as
`http://vault.vault.svc.cluster.local:8200` are rewritten through the platform's service
map in memory — logged, the files untouched — and the rest is server-side applied.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.wait import eventually

FIELD_MANAGER = "heracles-harness"
# libyaml when the wheel has it: ESO's 2.3 MB CRD bundle takes ~10 s in pure Python.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUFFIXES = (".yaml", ".yml")


class ManifestError(HarnessError):
    """Invalid input; the message lists every problem with its file and object."""


@dataclass
class Document:
    source: str
    line: int
    obj: dict[str, Any]
    rewrites: list[tuple[str, str]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        return (self.obj.get("metadata") or {}).get("namespace")

    @property
    def ref(self) -> str:
        ns = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind or '?'}/{self.name or '?'}{ns} ({self.source}:{self.line})"


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise ManifestError(f"{p}: no such file or directory")
    return out


def load(paths: Iterable[Path]) -> list[Document]:
    """Every YAML document of every file (directories recursively); YAML errors -> file:line."""
    docs: list[Document] = []
    problems: list[str] = []
    for f in _files(paths):
        try:
            parsed = _parse(f.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{f}:{mark.line + 1}" if mark else str(f)
            problems.append(f"{where}: YAML error: {getattr(exc, 'problem', exc)}")
            continue
        for line, obj in parsed:
            if obj is None:
                continue
            if not isinstance(obj, dict):
                problems.append(f"{f}:{line}: a document must be a mapping, got "
                                f"{type(obj).__name__}")
                continue
            kind = obj.get("kind")
            if kind is not None and not isinstance(kind, str):
                problems.append(f"{f}:{line}: kind must be a string, got {kind!r}")
                continue
            if not isinstance(obj.get("metadata", {}), dict):
                problems.append(f"{f}:{line}: metadata must be a mapping")
                continue
            if (kind or "").endswith("List") and "items" in obj:
                items = obj["items"] or []
                bad = [i for i in items if not isinstance(i, dict)] if isinstance(
                    items, list) else [items]
                if bad:
                    problems.append(f"{f}:{line}: {kind}.items must be a list of mappings")
                    continue
                docs += [Document(str(f), line, item) for item in items]
            else:
                docs.append(Document(str(f), line, obj))
    if problems:
        raise ManifestError("invalid manifests, nothing applied:\n  " + "\n  ".join(problems))
    return docs


def _parse(text: str) -> list[tuple[int, Any]]:
    """(first line, object) per document, in one pass."""
    loader = Loader(text)
    out = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                out.append((node.start_mark.line + 1, loader.construct_document(node)))
    finally:
        loader.dispose()
    return out


def crd_kinds(docs: list[Document]) -> dict[tuple[str, str], bool]:
    """(apiVersion, kind) -> namespaced, for the CRDs in this input."""
    out: dict[tuple[str, str], bool] = {}
    for d in docs:
        if d.kind == "CustomResourceDefinition":
            spec = d.obj.get("spec") or {}
            group, kind = str(spec.get("group")), str((spec.get("names") or {}).get("kind"))
            for v in spec.get("versions") or []:
                if isinstance(v, dict) and v.get("served") and v.get("name"):
                    out[(f"{group}/{v['name']}", kind)] = spec.get("scope") == "Namespaced"
    return out


def validate(docs: list[Document], dyn: Any) -> None:
    """Check every document against the live API (and the input's own CRDs)."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    own = crd_kinds(docs)
    in_input_ns = {d.name for d in docs if d.kind == "Namespace"}
    problems: list[str] = []
    existing_ns: set[str] | None = None
    for d in docs:
        if not d.api_version or not d.kind:
            problems.append(f"{d.ref}: missing apiVersion or kind")
            continue
        if not d.name:
            problems.append(f"{d.ref}: missing metadata.name")
            continue
        if (d.api_version, d.kind) in own:
            namespaced = own[(d.api_version, d.kind)]
        else:
            try:
                res = dyn.resources.get(api_version=d.api_version, kind=d.kind)
            except ResourceNotFoundError:
                group = d.api_version.split("/")[0] if "/" in d.api_version else "core"
                problems.append(
                    f"{d.ref}: the cluster does not serve kind {d.kind} in {d.api_version} "
                    f"(unknown kind, wrong API version, or the CRD for group {group} is not "
                    "installed)")
                continue
            namespaced = bool(res.namespaced)
        if namespaced:
            ns = d.namespace or "default"
            if existing_ns is None:
                core = dyn.resources.get(api_version="v1", kind="Namespace")
                existing_ns = {n.metadata.name for n in core.get().items}
            if ns not in existing_ns and ns not in in_input_ns:
                problems.append(f"{d.ref}: namespace {ns!r} does not exist")
        elif d.namespace:
            problems.append(f"{d.ref}: kind {d.kind} is cluster-scoped but has a namespace")
    if problems:
        raise ManifestError("invalid manifests, nothing applied:\n  " + "\n  ".join(problems))


ARGO_IN_CLUSTER = "https://kubernetes.default.svc"


def rewrite(docs: list[Document], service_map: dict[str, str]) -> list[Document]:
    """Copies of the documents with in-cluster service addresses made local."""
    ordered = sorted(service_map.items(), key=lambda kv: len(kv[0]), reverse=True)

    def walk(value: Any, doc: Document) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, doc) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, doc) for v in value]
        if isinstance(value, str):
            if doc.obj.get("apiVersion", "").startswith("argoproj.io/") and \
                    value.startswith(ARGO_IN_CLUSTER):
                return value  # Argo CD resolves its in-cluster destination itself
            for remote, local in ordered:
                if value == remote or value.startswith(remote.rstrip("/") + "/"):
                    doc.rewrites.append((value, local + value[len(remote):]))
                    return local + value[len(remote):]
        return value

    out = []
    for d in docs:
        copy_doc = Document(d.source, d.line, copy.deepcopy(d.obj))
        copy_doc.obj = walk(copy_doc.obj, copy_doc)
        out.append(copy_doc)
    return out


def _wait_established(dyn: Any, names: list[str], timeout: float = 60) -> None:
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1",
                             kind="CustomResourceDefinition")
    pending = list(names)

    def established() -> bool:
        pending[:] = [name for name in pending if not any(
            c.type == "Established" and c.status == "True"
            for c in crds.get(name=name).status.conditions or [])]
        if pending:
            raise AssertionError(f"not Established: {', '.join(pending)}")
        return True

    eventually(established, timeout=timeout, description="CRDs Established",
               error=HarnessError, retry_on=(AssertionError,))


def _server_side_apply(d: Document, dyn: Any, dry_run: bool) -> None:
    from kubernetes.dynamic.exceptions import DynamicApiError

    res = dyn.resources.get(api_version=d.api_version, kind=d.kind)
    ns = (d.namespace or "default") if res.namespaced else None
    body = copy.deepcopy(d.obj)
    if ns:
        body.setdefault("metadata", {})["namespace"] = ns
    try:
        res.server_side_apply(body=body, name=d.name, namespace=ns,
                              field_manager=FIELD_MANAGER, force_conflicts=True,
                              dry_run="All" if dry_run else None)
    except DynamicApiError as exc:
        reason = exc.summary()
        raise ManifestError(f"{d.ref}: rejected by the API server: {reason}") from None


def _dry_run(docs: list[Document], dyn: Any) -> None:
    """The API server validates every document (schemas, admission) before any is
    applied; all rejections are reported together."""
    problems = []
    for d in docs:
        try:
            _server_side_apply(d, dyn, dry_run=True)
        except ManifestError as exc:
            problems.append(str(exc))
    if problems:
        raise ManifestError("invalid manifests, nothing applied:\n  " + "\n  ".join(problems))


def apply(docs: list[Document], dyn: Any, log: Callable[[str], None] = lambda _m: None) -> None:
    """Server-side apply: a dry run of everything first, then Namespaces and CRDs
    (awaited), then the rest. Objects whose CRD or namespace is itself in the input can
    only be dry-run once those exist; if one of them is then rejected, only the
    Namespaces/CRDs have been applied, and the message says so."""
    own_kinds = crd_kinds(docs)
    new_ns = {d.name for d in docs if d.kind == "Namespace"}

    def deferred(d: Document) -> bool:
        return (d.api_version, d.kind) in own_kinds or (d.namespace or "") in new_ns

    _dry_run([d for d in docs if not deferred(d)], dyn)
    applied: list[Document] = []
    first = [d for d in docs if d.kind in ("Namespace", "CustomResourceDefinition")]
    rest = [d for d in docs if d not in first]
    for batch in (first, rest):
        if batch is rest and first:
            try:
                _dry_run([d for d in rest if deferred(d)], dyn)
            except ManifestError as exc:
                raise ManifestError(f"{exc}\n(the Namespaces/CRDs of this input were "
                                    "applied; nothing else was)") from None
        for d in batch:
            try:
                _server_side_apply(d, dyn, dry_run=False)
            except ManifestError as exc:
                done = ", ".join(f"{a.kind}/{a.name}" for a in applied) or "nothing"
                raise ManifestError(f"{exc}\n(already applied by this call: {done})") from None
            applied.append(d)
            ns = d.namespace or ("default" if dyn.resources.get(
                api_version=d.api_version, kind=d.kind).namespaced else None)
            log(f"applied {d.kind}/{d.name}" + (f" -n {ns}" if ns else ""))
        crds = [d.name for d in batch if d.kind == "CustomResourceDefinition"]
        if crds:
            _wait_established(dyn, crds)
            dyn.resources.invalidate_cache()


def apply_paths(paths: Iterable[Path], dyn: Any, service_map: dict[str, str],
                log: Callable[[str], None] = lambda _m: None) -> list[Document]:
    docs = load(paths)
    validate(docs, dyn)
    local = rewrite(docs, service_map)
    for d in local:
        for old, new in d.rewrites:
            log(f"{d.ref}: {old} -> {new} (service map)")
    apply(local, dyn, log)
    return local
