"""`harness apply`: load → validate everything → rewrite in-cluster addresses → apply.

Nothing is applied unless every document is valid: a YAML error names the file and line,
an unknown kind or a missing CRD names the object. CustomResourceDefinitions in the same
input count as known kinds; they are applied (and awaited until Established) before the
objects that need them. Service addresses such as
`http://vault.vault.svc.cluster.local:8200` are rewritten through the platform's service
map in memory — logged, the files untouched — and the rest is server-side applied.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml

from harness.errors import HarnessError, InputError
from harness.wait import eventually

FIELD_MANAGER = "heracles-harness"
# libyaml when the wheel has it: ESO's 2.3 MB CRD bundle takes ~10 s in pure Python.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SUFFIXES = (".yaml", ".yml")


class ManifestError(InputError):
    """Invalid input; the message lists every problem with its file and object."""

    @classmethod
    def invalid(cls, problems: list[str]) -> ManifestError:
        """One line for one problem, one line each (indented) for several."""
        if len(problems) == 1:
            return cls(f"invalid manifests, nothing applied: {problems[0]}")
        return cls(f"invalid manifests ({len(problems)} problems), nothing applied:\n  "
                   + "\n  ".join(problems))


# What losing the API server looks like through the Kubernetes client: urllib3's
# MaxRetryError/ProtocolError/NewConnectionError, or a socket error that escaped them.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError, ConnectionError, OSError)


class ApplyInterrupted(ManifestError):
    """The API server went away during an apply: how far it got (objects applied of how
    many), what failed and why, and that running it again is safe — server-side apply is
    idempotent, so a re-run re-applies what was done and finishes the rest."""

    def __init__(self, applied: int, total: int, failed: Document | None, step: str,
                 reason: str, server: str = "") -> None:
        self.applied, self.total, self.failed, self.reason = applied, total, failed, reason
        at = f" {server}" if server else ""
        what = f" {failed.ref}" if failed is not None else ""
        done = (f"{applied} of {total} object(s) applied"
                if applied else f"nothing applied (0 of {total} object(s))")
        retry = ("server-side apply is idempotent: re-run the same command to apply the "
                 "rest" if applied else "re-run the same command when it is back")
        super().__init__(f"lost the API server{at} while {step}{what}: {reason}; {done}; "
                         f"{retry}")


def transport_reason(exc: BaseException) -> str:
    """`connection refused`, `connection reset by peer`... out of urllib3's wrapping
    (MaxRetryError -> NewConnectionError -> '[Errno 111] Connection refused')."""
    chain = [exc]
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        chain.append(reason)
    chain += [a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)]
    for e in reversed(chain):
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
        found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(e))
        if found:
            return found.group(1).strip().lower()
    last = chain[-1]
    text = str(last).strip() or type(last).__name__
    return text[0].lower() + text[1:]


def _server_of(dyn: Any) -> str:
    """The API server's address, for the message (empty when the client has none)."""
    host = getattr(getattr(getattr(dyn, "client", None), "configuration", None), "host", "")
    return host if isinstance(host, str) else ""


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
        ns = (self.obj.get("metadata") or {}).get("namespace")
        return str(ns) if ns is not None else None

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


def _object_problem(obj: Any) -> str | None:
    """What makes one document unusable before any server sees it (the fields the
    harness itself reads: kind, apiVersion, metadata.name/namespace), or None."""
    if not isinstance(obj, dict):
        return f"a document must be a mapping, got {InputError.kind_of(obj)}"
    for key in ("kind", "apiVersion"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return f"{key} must be a string, got {InputError.kind_of(obj[key])}"
    meta = obj.get("metadata", {})
    if not isinstance(meta, dict):
        return f"metadata must be a mapping, got {InputError.kind_of(meta)}"
    for key in ("name", "namespace"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            return (f"metadata.{key} must be a string, got {InputError.kind_of(meta[key])} "
                    "(quote it)")
    return None


def load(paths: Iterable[Path]) -> list[Document]:
    """Every YAML document of every file (directories recursively); any problem -> file:line,
    all of them reported together, and nothing is returned half-loaded."""
    docs: list[Document] = []
    problems: list[str] = []
    for f in _files(paths):
        try:
            parsed = _parse(ManifestError.read_text(f))
        except ManifestError as exc:
            problems.append(str(exc))
            continue
        except (yaml.YAMLError, RecursionError) as exc:
            problems.append(ManifestError.yaml_problem(str(f), exc))
            continue
        for line, obj in parsed:
            if obj is None:
                continue
            problem = _object_problem(obj)
            if problem:
                problems.append(f"{f}:{line}: {problem}")
                continue
            kind = obj.get("kind") or ""
            if kind.endswith("List") and "items" in obj:
                items = obj["items"] or []
                bad = [i for i in items if _object_problem(i)] if isinstance(
                    items, list) else [items]
                if bad:
                    why = _object_problem(bad[0]) if isinstance(items, list) else None
                    problems.append(f"{f}:{line}: {kind}.items must be a list of mappings"
                                    + (f" ({why})" if why else ""))
                    continue
                docs += [Document(str(f), line, item) for item in items]
            else:
                docs.append(Document(str(f), line, obj))
    if problems:
        raise ManifestError.invalid(problems)
    return docs


def load_cached(paths: list[Path], cache_dir: Path) -> list[Document]:
    """load() for files that do not change once written (the toolchain's CRD bundles),
    each parsed once: its documents kept as JSON under `cache_dir`, named by the file's
    content hash. Every environment start read ESO's and Argo CD's CRDs (2.8 MB of YAML,
    0.66 CPU-s through libyaml); the JSON reads in 0.014."""
    docs: list[Document] = []
    for f in paths:
        data = f.read_bytes()
        cached = cache_dir / f"{hashlib.sha256(data).hexdigest()}.json"
        try:
            entries = json.loads(cached.read_text())
        except (OSError, ValueError):
            entries = [[d.line, d.obj] for d in load([f])]
            _keep_json(entries, cached)
        docs += [Document(str(f), line, obj) for line, obj in entries]
    return docs


def _keep_json(entries: list[list[Any]], path: Path) -> None:
    """Write entries as JSON, whole then renamed, only if JSON gives them back unchanged
    (a YAML date or a non-string key would not round-trip: then no cache)."""
    try:
        text = json.dumps(entries)
    except (TypeError, ValueError):
        return
    if json.loads(text) != entries:
        return
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged.write_text(text)
        os.replace(staged, path)
    except OSError:  # a read-only cache: parsed again next time, nothing lost
        with contextlib.suppress(OSError):
            staged.unlink()


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
            spec = d.obj.get("spec")
            spec = spec if isinstance(spec, dict) else {}  # malformed: the dry run names it
            names = spec.get("names")
            group = str(spec.get("group"))
            kind = str(names.get("kind")) if isinstance(names, dict) else "None"
            versions = spec.get("versions")
            for v in versions if isinstance(versions, list) else []:
                if isinstance(v, dict) and v.get("served") and v.get("name"):
                    out[(f"{group}/{v['name']}", kind)] = spec.get("scope") == "Namespaced"
    return out


def _object_incomplete(d: Document) -> str | None:
    """What `load` lets through (YAML of other tools has no kind) but no API takes."""
    if not d.api_version or not d.kind:
        return f"{d.ref}: missing apiVersion or kind"
    if not d.name:
        return f"{d.ref}: missing metadata.name"
    return None


def check_objects(docs: list[Document]) -> None:
    """What can be judged without a cluster: every document a whole object (apiVersion,
    kind, metadata.name). Commands call it before they attach, so a bad file is named
    as such whether or not an environment runs; `validate` checks it again."""
    problems = [p for p in map(_object_incomplete, docs) if p]
    if problems:
        raise ManifestError.invalid(problems)


def validate(docs: list[Document], dyn: Any) -> None:
    """Check every document against the live API (and the input's own CRDs); an API
    server that cannot be reached is one line (nothing was applied), not urllib3's."""
    try:
        _validate(docs, dyn)
    except TRANSPORT_ERRORS as exc:
        raise ApplyInterrupted(0, len(docs), None, "validating against the live API",
                               transport_reason(exc), _server_of(dyn)) from None


def _validate(docs: list[Document], dyn: Any) -> None:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    own = crd_kinds(docs)
    in_input_ns = {d.name for d in docs if d.kind == "Namespace"}
    problems: list[str] = []
    existing_ns: set[str] | None = None
    for d in docs:
        problem = _object_incomplete(d)
        if problem:
            problems.append(problem)
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
        raise ManifestError.invalid(problems)


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
    """Every CRD of `names` Established: one list per poll, read as plain JSON (CRDs
    are large, and the client's objects slow to build)."""
    pending = list(names)

    def established() -> bool:
        ok = {i["metadata"]["name"] for i in crd_list(dyn.client)
              if any(c.get("type") == "Established" and c.get("status") == "True"
                     for c in (i.get("status") or {}).get("conditions") or [])}
        pending[:] = [name for name in pending if name not in ok]
        if pending:
            raise AssertionError(f"not Established: {', '.join(pending)}")
        return True

    eventually(established, timeout=timeout, interval=0.05, description="CRDs Established",
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


def _dry_run(docs: list[Document], dyn: Any, progress: _Progress | None = None) -> None:
    """The API server validates every document (schemas, admission) before any is
    applied; all rejections are reported together."""
    problems = []
    for d in docs:
        if progress is not None:
            progress.current = d
        try:
            _server_side_apply(d, dyn, dry_run=True)
        except ManifestError as exc:
            problems.append(str(exc))
    if problems:
        raise ManifestError.invalid(problems)


@dataclass
class _Progress:
    """How far an apply got: what the message says when the API server goes away."""

    total: int
    applied: list[Document] = field(default_factory=list)
    current: Document | None = None
    step: str = "dry-running the input"


def apply(docs: list[Document], dyn: Any, log: Callable[[str], None] = lambda _m: None) -> None:
    """Server-side apply: a dry run of everything first, then Namespaces and CRDs
    (awaited), then the rest. Objects whose CRD or namespace is itself in the input can
    only be dry-run once those exist; if one of them is then rejected, only the
    Namespaces/CRDs have been applied, and the message says so. Losing the API server on
    the way raises ApplyInterrupted: how many were applied of how many, which object
    failed and why, and that a re-run is safe."""
    progress = _Progress(total=len(docs))
    try:
        _apply(docs, dyn, log, progress)
    except TRANSPORT_ERRORS as exc:
        raise ApplyInterrupted(len(progress.applied), progress.total, progress.current,
                               progress.step, transport_reason(exc),
                               _server_of(dyn)) from None


def _apply(docs: list[Document], dyn: Any, log: Callable[[str], None],
           progress: _Progress) -> None:
    own_kinds = crd_kinds(docs)
    new_ns = {d.name for d in docs if d.kind == "Namespace"}

    def deferred(d: Document) -> bool:
        return (d.api_version, d.kind) in own_kinds or (d.namespace or "") in new_ns

    _dry_run([d for d in docs if not deferred(d)], dyn, progress)
    applied = progress.applied
    first = [d for d in docs if d.kind in ("Namespace", "CustomResourceDefinition")]
    rest = [d for d in docs if d not in first]
    for batch in (first, rest):
        if batch is rest and first:
            progress.step = "dry-running objects that need the new Namespaces/CRDs"
            try:
                _dry_run([d for d in rest if deferred(d)], dyn, progress)
            except ManifestError as exc:
                raise ManifestError(f"{exc}\n(the Namespaces/CRDs of this input were "
                                    "applied; nothing else was)") from None
        progress.step, progress.current = "applying", None
        for d in batch:
            progress.current = d
            try:
                _server_side_apply(d, dyn, dry_run=False)
            except ManifestError as exc:
                done = ", ".join(f"{a.kind}/{a.name}" for a in applied) or "nothing"
                raise ManifestError(f"{exc}\n(already applied by this call, {len(applied)} "
                                    f"of {progress.total}: {done})") from None
            applied.append(d)
            progress.current = None
            ns = d.namespace or ("default" if dyn.resources.get(
                api_version=d.api_version, kind=d.kind).namespaced else None)
            log(f"applied {d.kind}/{d.name}" + (f" -n {ns}" if ns else ""))
        crds = [d.name for d in batch if d.kind == "CustomResourceDefinition"]
        if crds:
            progress.step = "waiting for CRDs to be Established"
            _wait_established(dyn, crds)
            dyn.resources.invalidate_cache()


def apply_paths(paths: Iterable[Path], dyn: Any, service_map: dict[str, str],
                log: Callable[[str], None] = lambda _m: None) -> list[Document]:
    """load -> validate -> rewrite -> apply: the whole of `harness apply PATHS`."""
    docs = load(paths)
    validate(docs, dyn)
    local = rewrite(docs, service_map)
    for d in local:
        for old, new in d.rewrites:
            log(f"{d.ref}: {old} -> {new} (service map)")
    apply(local, dyn, log)
    return local


# ---- CRDs a component installs (vendored, trusted) -----------------------------------------
CRD_DIGEST = "heracles.dev/source-digest"
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def crd_digest(obj: dict) -> str:
    """What a CRD manifest says, as one hash: a CRD carrying it needs no apply."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def installed_crd_digests(api_client: Any) -> dict[str, str]:
    """CRD name -> the digest annotation it carries ('' when none), from metadata only
    (the CRDs themselves weigh megabytes)."""
    items = crd_list(api_client, metadata_only=True)
    return {i["metadata"]["name"]: (i["metadata"].get("annotations") or {}).get(CRD_DIGEST, "")
            for i in items}


def crd_list(api_client: Any, metadata_only: bool = False) -> list[dict]:
    """The cluster's CRDs as plain JSON (building the client's models for megabytes of
    schemas takes longer than the request)."""
    from kubernetes import client

    headers = {"Accept": _METADATA_LIST} if metadata_only else None
    resp: Any = client.ApiextensionsV1Api(api_client).list_custom_resource_definition(
        _preload_content=False, _headers=headers)  # the raw response: not the typed list
    items: list[dict] = json.loads(resp.data).get("items") or []
    return items


def ensure_crds(docs: list[Document], dyn: Any, timeout: float = 60) -> list[str]:
    """The harness's own CRDs (from the toolchain, not a user's input): each one the
    cluster lacks, or holds in another version, is server-side applied with its digest
    annotation; those already there as written are left alone — applying a CRD costs the
    API server about a second of CPU. Returns the names applied; all are Established on
    return."""
    crds = [d for d in docs if d.kind == "CustomResourceDefinition"]
    if not crds:
        return []
    have = installed_crd_digests(dyn.client)
    applied = []
    try:
        for d in crds:
            digest = crd_digest(d.obj)
            if have.get(d.name) == digest:
                continue
            obj = copy.deepcopy(d.obj)
            obj.setdefault("metadata", {}).setdefault("annotations", {})[CRD_DIGEST] = digest
            _server_side_apply(Document(d.source, d.line, obj), dyn, dry_run=False)
            applied.append(d.name)
        _wait_established(dyn, [d.name for d in crds], timeout=timeout)
    except TRANSPORT_ERRORS as exc:
        raise ApplyInterrupted(len(applied), len(crds), None, "installing CRDs",
                               transport_reason(exc), _server_of(dyn)) from None
    if applied:
        dyn.resources.invalidate_cache()
    return applied
