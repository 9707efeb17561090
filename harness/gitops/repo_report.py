"""One report of a team's repository, read the way Argo CD reads it: per Application its
render (and, applied against a running environment, its Sync/Health), its findings and
unservable sources; per ExternalSecret whether it synced and why not; per PrometheusRule
rule ok, dead or not simulated; and the findings on the Vault configuration the
repository deploys (a Helm values file, or the Application installing the Vault chart).

`build` makes it (offline from a scan alone, or with the `LiveState` that
`collect_live` reads from the environment), `write` puts it in a directory as
report.json, report.md and report.html (one self-contained page). Every string passes
through the redactor before it is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from jinja2 import DictLoader, Environment

from harness.clients.manifests import Document
from harness.errors import HarnessError
from harness.gitops.argo_render import Finding, is_argo
from harness.gitops.platform_repo import RepoScan, application_plan, payload
from harness.runtime.redact import redact_doc

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment

RULE_STATES = ("ok", "dead", "not-simulated", "unchecked", "invalid")


@dataclass
class LiveState:
    """What a running environment says after the apply."""

    applications: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> state
    external_secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    metrics: set[str] | None = None  # live metric names (None: no Prometheus runs)
    vault_values: str | None = None  # the environment's own --vault-values
    profile: str = "dev"


def _rel(root: Path, d: Document) -> str:
    src = d.source.removesuffix(" (kustomize)").removesuffix(" (helm)")
    p = Path(src)
    shown = str(p.relative_to(root)) if p.is_absolute() and p.is_relative_to(root) else src
    shown = shown or "."
    if d.source.endswith(" (kustomize)"):
        return f"{shown} (kustomize #{d.line})"
    if d.source.endswith(" (helm)"):
        return f"{shown} (helm #{d.line})"
    return f"{shown}:{d.line}"


def vault_profile(profile: str) -> str:
    """The profile a Vault server configuration is judged against: dev runs a dev-mode
    server whatever the values say, so its configuration matters from staging on."""
    return profile if profile in ("staging", "prod") else "staging"


def _looks_like_vault_values(path: Path) -> bool:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    server = doc.get("server") if isinstance(doc, dict) else None
    return isinstance(server, dict) and bool({"ha", "standalone", "dev"} & set(server))


def vault_section(found: RepoScan, profile: str,
                  in_use: str | None = None) -> list[dict[str, Any]]:
    """Every Vault configuration the repository deploys, judged: the Applications that
    install the Vault/OpenBao chart (their inline values, valuesObject, valueFiles),
    then Helm values files that look like Vault's and no such Application reads."""
    from harness.vault_config.values import (
        VaultValuesError,
        application_values,
        judge,
        load,
        vault_source,
    )

    root = found.root
    against = vault_profile(profile)
    out: list[dict[str, Any]] = []
    read_files: set[Path] = set()

    def entry(source: Path, run: Any) -> dict[str, Any]:
        rel = str(source.relative_to(root)) if source.is_relative_to(root) else str(source)
        item: dict[str, Any] = {"source": rel, "judged_against": against,
                                "run_with": f"harness up --profile {against} "
                                            f"--vault-values {source}",
                                "in_use": bool(in_use) and Path(str(in_use)).resolve()
                                == source.resolve()}
        try:
            vv = run()
        except VaultValuesError as exc:
            item.update(error=str(exc), findings=[])
            return item
        item.update(origin=vv.origin, mode=vv.mode, replicas=vv.replicas,
                    storage=vv.storage, findings=[f.__dict__ for f in vv.findings])
        return item

    for r in found.apps:
        app_file = Path(r.doc.source)
        which = vault_source(r.doc.obj, app_file, root) if app_file.is_file() else None
        if which is None:
            continue
        helm = _srcs(r.doc.obj)[which[0]].get("helm") or {}
        for vf in helm.get("valueFiles") or []:
            vf = str(vf)
            base = root / (vf.split("/", 1)[1] if vf.startswith("$") else vf)
            read_files.add(base.resolve())
            for s in _srcs(r.doc.obj):
                if s.get("path") is not None:
                    read_files.add((root / str(s["path"]) / vf).resolve())

        def run(obj: dict[str, Any] = r.doc.obj, f: Path = app_file, name: str = r.name) -> Any:
            values, origin = application_values(obj, f, root)
            return judge(values, f"Vault Helm values of Argo CD Application {name} ({f})", f,
                         against, origin)

        out.append(entry(app_file, run) | {"application": r.name})
    for rel, _why in found.skipped:
        path = root / rel
        if path.resolve() in read_files or not _looks_like_vault_values(path):
            continue
        out.append(entry(path, lambda p=path: load(p, against)) | {"application": None})
    return out


def _srcs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    from harness.gitops.argo_render import sources_of

    return sources_of(obj)


def _rules(found: RepoScan, docs: list[Document], metrics: set[str] | None,
           owner: dict[int, str]) -> list[dict[str, Any]]:
    from harness.rules import NOT_SIMULATED, check_rules, metric_names, rules_from
    from harness.rules.load import RulesError

    out: list[dict[str, Any]] = []
    for d in docs:
        where = _rel(found.root, d)
        base = {"document": f"PrometheusRule/{d.name}", "source": where,
                "application": owner.get(id(d))}
        try:
            rules = rules_from([(where, d.obj)])
        except (RulesError, HarnessError) as exc:
            out.append({**base, "group": "", "rule": "", "status": "invalid",
                        "why": str(exc), "missing": [], "closest": {}})
            continue
        if metrics is not None:
            for v in check_rules(rules, metrics):
                why = ("metric not exposed by any target" if v.status == "dead" else
                       "from components this environment does not run"
                       if v.status == "not-simulated" else "")
                out.append({**base, "group": v.rule.group, "rule": v.rule.name,
                            "status": v.status, "missing": v.missing, "closest": v.closest,
                            "why": why})
            continue
        for rule in rules:
            try:
                names = sorted(metric_names(rule.expr))
            except HarnessError as exc:
                out.append({**base, "group": rule.group, "rule": rule.name,
                            "status": "invalid", "why": str(exc), "missing": [],
                            "closest": {}})
                continue
            simulated = [n for n in names if not n.startswith(NOT_SIMULATED)]
            status = "unchecked" if simulated or not names else "not-simulated"
            out.append({**base, "group": rule.group, "rule": rule.name, "status": status,
                        "missing": [] if simulated else names, "closest": {},
                        "why": "needs the live metrics of a running environment "
                               f"({', '.join(names)})" if status == "unchecked" else
                               "from components the harness does not run"})
    return out


def build(found: RepoScan, env: str, profile: str, live: LiveState | None = None,
          applied: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report as data (what report.json holds; the Markdown and HTML show it)."""
    root = found.root
    repo_findings = [f.to_json() for f in found.findings]
    plan = None
    try:
        plan = application_plan(found, env) if found.apps else None
    except HarnessError as exc:
        repo_findings.append(Finding("error", "environment", str(exc)).to_json())
    expected = {id(d) for d in plan.expected} if plan else set()
    in_env_keys = {r.key for r in found.apps if id(r.doc) in expected}
    names = {r.key: r.name for r in found.apps}
    apps: list[dict[str, Any]] = []
    for r in found.apps:
        a = r.to_json()
        a["parents"] = [names.get(p, p) for p in r.parents]
        if plan is None:
            a["in_environment"] = True
        elif r.name in plan.platform and r.key not in in_env_keys:
            a["in_environment"] = True
            a["applied"] = plan.platform[r.name]
        else:
            a["in_environment"] = r.key in in_env_keys
        if not a["in_environment"]:
            a["applied"] = f"not applied: another environment's (this report is for {env})"
        if live is not None and a["in_environment"] and "applied" not in a:
            state = live.applications.get(r.name)
            if state is None:
                a["applied"] = "not applied"
            else:
                a.update(sync=state.get("sync"), health=state.get("health"),
                         messages=state.get("messages", []))
        if plan is not None and r.name in plan.unservable and a["in_environment"] \
                and not r.unservable:
            a["findings"].append(Finding("unservable", "Argo CD here",
                                         plan.unservable[r.name]).to_json())
        apps.append(a)
    owner: dict[int, str] = {}
    for r in found.apps:
        for o in r.objects:
            owner.setdefault(id(o), r.name)
    if found.apps:
        objects = payload(found, env) if plan is not None else [
            o for r in found.apps for o in r.objects]
        everything = [o for r in found.apps if not r.platform for o in r.objects]
    else:
        objects = everything = [d for d in found.docs if not is_argo(d)]
    from harness.gitops.platform_repo import dedupe

    ids = {id(o) for o in objects}
    secrets: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for d in dedupe([o for o in everything if o.kind == "ExternalSecret"]):
        key = (d.namespace or "", d.name)
        if key in seen:
            continue
        seen.add(key)
        item: dict[str, Any] = {"namespace": d.namespace, "name": d.name,
                                "source": _rel(root, d), "application": owner.get(id(d))}
        if live is None:
            item.update(status="offline", why="not applied (offline render)")
        elif id(d) not in ids and not any(
                (o.namespace, o.name) == (d.namespace, d.name) for o in objects):
            item.update(status="not-applied", why="its Application is not applied in this "
                                                  f"environment ({env})")
        else:
            state = live.external_secrets.get(key) or live.external_secrets.get(("", d.name))
            item.update(state or {"status": "absent", "why": "not found in the cluster"})
        secrets.append(item)
    rules = _rules(found, dedupe([o for o in everything if o.kind == "PrometheusRule"]),
                   live.metrics if live is not None else None, owner)
    vault = vault_section(found, live.profile if live else profile,
                          live.vault_values if live else None)
    status = {s: sum(a["status"] == s for a in apps) for s in ("rendered", "failed",
                                                                "unservable")}
    summary = {
        "applications": len(apps), **status,
        "platform_components": sum(bool(a["platform"]) for a in apps),
        "applicationsets": len(found.appsets),
        "external_secrets": len(secrets),
        "external_secrets_synced": sum(s["status"] == "synced" for s in secrets),
        "rules": {s: sum(r["status"] == s for r in rules) for s in RULE_STATES},
        "vault_cannot": sum(f["level"] == "cannot" for v in vault for f in v["findings"])
        + sum(bool(v.get("error")) for v in vault),
        "errors": sum(f["level"] == "error" for a in apps for f in a["findings"])
        + sum(f["level"] == "error" for f in repo_findings)}
    report = {
        "repository": str(root), "name": root.name,
        "mode": "applied" if live is not None else "offline",
        "environment": env, "profile": live.profile if live else profile,
        "generated_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "render_seconds": round(found.render_seconds, 3),
        "summary": summary,
        "repository_findings": repo_findings,
        "applications": apps,
        "applicationsets": [s.to_json() for s in found.appsets],
        "external_secrets": secrets, "rules": rules, "vault": vault,
        "skipped": [{"file": f, "why": w} for f, w in found.skipped],
        "orphans": found.orphans,
    }
    if applied is not None:
        report["apply"] = {k: applied.get(k) for k in ("objects", "namespaces_created",
                                                       "vault_seed")}
    return redact_doc(report)


def failed(report: dict[str, Any]) -> list[str]:
    """What makes `harness apply --platform-repo --dry-run` exit 1: Applications Argo CD
    could not render, and errors of the repository itself (a root kustomization)."""
    out = [f"Application {a['name']} ({a['file']}): {f['what']}: {f['message']}"
           for a in report["applications"] for f in a["findings"] if f["level"] == "error"]
    return out + [f"{f['what']}: {f['message']}" for f in report["repository_findings"]
                  if f["level"] == "error"]


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines for the terminal."""
    s = report["summary"]
    lines = [f"{report['name']}: {s['applications']} Application(s) — {s['rendered']} "
             f"rendered, {s['failed']} failed, {s['unservable']} unservable; "
             f"{s['external_secrets']} ExternalSecret(s)"
             + (f", {s['external_secrets_synced']} synced" if report["mode"] == "applied"
                else "")
             + "; rules " + (", ".join(f"{v} {k}" for k, v in s["rules"].items() if v)
                             or "none")
             + f" (rendered in {report['render_seconds']:.2f} s)"]
    for a in report["applications"]:
        state = f" {a.get('sync')}/{a.get('health')}" if a.get("sync") else ""
        note = (f" [platform: {a['platform']}, not applied]" if a["platform"] else
                "" if a["in_environment"] else " [another environment]")
        lines.append(f"  {a['status']:10} {a['name']}{state} ({a['file']}){note}")
        lines += [f"      Argo CD: {m}" for m in a.get("messages") or []]
        lines += [f"      [{f['level']}] {f['what']}: {f['message']}" for f in a["findings"]]
    lines += [f"  [{f['level']}] {f['what']}: {f['message']}"
              for f in report["repository_findings"]]
    for v in report["vault"]:
        head = v.get("error") or f"{v['mode']}, {v['replicas']} replica(s), storage " \
                                 f"{v['storage']} (against {v['judged_against']})"
        lines.append(f"  Vault {v['source']}: {head}")
        lines += [f"      [{f['level']}] {f['what']}: {f['why']}" for f in v["findings"]]
    return lines


# ---- collecting the live state ---------------------------------------------------------
def collect_live(platform: LocalEnvironment, found: RepoScan, env: str,
                 applied: dict[str, Any], settle: float = 30.0) -> LiveState:
    """Sync/Health of every Application the apply expects, each ExternalSecret's Ready
    condition (waiting up to `settle` seconds for the pending ones: ESO reconciles
    within seconds), and the live metric names."""
    from kubernetes.client import ApiException

    from harness.clients.argocd import Applications

    state = LiveState(profile=platform.settings.profile,
                      vault_values=str(platform.settings.vault_values or "") or None)
    kube = platform.kube_client()
    names = list(applied.get("applications", {}).get("expected", []))
    if names and "argocd" in platform.components:
        argo = Applications(kube)
        for name in names:
            try:
                st = argo.state(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                state.applications[name] = {"sync": "Missing", "health": "Missing",
                                            "messages": ["not created (yet): its parent "
                                                         "has not created it"]}
                continue
            msgs = [c.get("message", "") for c in st["conditions"]
                    if "Error" in c.get("type", "")]
            op = st["operation"] or {}
            if op.get("phase") in ("Failed", "Error") and op.get("message"):
                msgs.append(f"sync {op['phase']}: {op['message']}")
            msgs += [f"{r['kind']}/{r['name']}: {r.get('health', {}).get('status')} "
                     f"{r.get('health', {}).get('message', '')}".strip()
                     for r in st["resources"]
                     if r.get("health", {}).get("status") not in (None, "Healthy")]
            state.applications[name] = {"sync": st["sync"], "health": st["health"],
                                        "messages": msgs}
    wanted = [tuple(x) for x in applied.get("external_secrets", [])]
    deadline = time.monotonic() + settle
    while True:
        pending = False
        for ns, name in wanted:
            state.external_secrets[(ns, name)] = es = _es_state(kube, ns, name)
            pending = pending or es["status"] == "pending"
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if "prometheus" in platform.components:
        state.metrics = platform.prometheus().live_metric_names()
    return state


def _es_state(kube: Any, namespace: str, name: str) -> dict[str, str]:
    from kubernetes.client import ApiException

    try:
        obj = kube.get_custom("external-secrets.io", "v1beta1", namespace, "externalsecrets",
                              name)
    except ApiException as exc:
        if exc.status == 404:
            return {"status": "absent", "why": "not found in the cluster"}
        raise
    ready = next((c for c in obj.get("status", {}).get("conditions", [])
                  if c.get("type") == "Ready"), None)
    if ready is None:
        return {"status": "pending", "why": "no Ready condition yet (ESO has not "
                                            "reconciled it)"}
    if ready.get("status") == "True":
        return {"status": "synced", "why": "", "reason": str(ready.get("reason", ""))}
    return {"status": "error" if ready.get("status") == "False" else "pending",
            "reason": str(ready.get("reason", "")), "why": str(ready.get("message", ""))}


# ---- writing ---------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Text for a Markdown table cell."""
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows)]


def _source_text(s: dict[str, Any], md: bool = True) -> str:
    q = "`" if md else ""
    what = f"chart {q}{s['chart']}{q}" if s["chart"] else f"path {q}{s['path']}{q}"
    return (f"{s['kind']} {what} @ {s['targetRevision']} from {s['repoURL']} → "
            f"{s['objects']} object(s)")


def _headline(r: dict[str, Any]) -> tuple[str, list[str]]:
    s = r["summary"]
    where = (f"{r['repository']} — read as Argo CD reads it ({r['mode']}"
             + (f", profile {r['profile']}" if r["mode"] == "applied" else "")
             + f", environment {r['environment']}); {r['generated_utc']}; rendered in "
             f"{r['render_seconds']:.2f} s.")
    rules = ", ".join(f"{v} {k}" for k, v in s["rules"].items() if v) or "none"
    items = [f"Applications: {s['applications']} — {s['rendered']} rendered, {s['failed']} "
             f"failed, {s['unservable']} unservable"
             + (f", {s['platform_components']} platform component(s)"
                if s["platform_components"] else ""),
             f"ExternalSecrets: {s['external_secrets']}"
             + (f" ({s['external_secrets_synced']} synced)" if r["mode"] == "applied" else ""),
             f"rules: {rules}"]
    return where, items


def _closest(x: dict[str, Any]) -> str:
    if not x.get("closest"):
        return ""
    return " (closest: " + "; ".join(f"{m} → {', '.join(c) or 'none'}"
                                     for m, c in x["closest"].items()) + ")"


def markdown(r: dict[str, Any]) -> str:
    """report.md: the same content as the HTML page, in Markdown."""
    where, items = _headline(r)
    errors = r["summary"]["errors"]
    out = [f"# Platform repository `{r['name']}`" + (f": {errors} error(s)" if errors else ""),
           "", where, "", *(f"- {i}" for i in items)]
    if r["repository_findings"]:
        out += ["", "## Repository findings", "", *_table(
            ["level", "what", "message"],
            [[f["level"], f["what"], f["message"]] for f in r["repository_findings"]])]
    out += ["", "## Applications"]
    if not r["applications"]:
        out += ["", "No Argo CD Applications: the repository's objects were read as a tree."]
    for a in r["applications"]:
        state = f" — {a['sync']} / {a['health']}" if a.get("sync") else ""
        meta = f"- file: `{a['file']}`" + (
            f", generated by {a['generated_by']}" if a["generated_by"] else "") + (
            f", rendered by {', '.join(a['parents'])}" if a["parents"] else "")
        out += ["", f"### `{a['name']}` — {a['status']}{state}", "", meta,
                *(f"- source: {_source_text(s)}" for s in a["sources"])]
        if a["platform"]:
            out.append(f"- platform component: {a['platform']}")
        if a.get("applied"):
            out.append(f"- {a['applied']}")
        out += [f"- Argo CD: {_md(m)}" for m in a.get("messages") or []]
        if a["findings"]:
            out += ["", *_table(["level", "what", "message"],
                                [[f["level"], f["what"], f["message"]] for f in a["findings"]])]
    if r["applicationsets"]:
        out += ["", "## ApplicationSets", ""]
        for aset in r["applicationsets"]:
            gens = "; ".join(f"{g['type']} → {g['applications']} Application(s)" if g["expanded"]
                             else f"{g['type']} not expanded: {g['why']}"
                             for g in aset["generators"])
            out.append(f"- `{aset['name']}` ({aset['file']}): {gens}")
            out += [f"  - [{f['level']}] {f['what']}: {f['message']}" for f in aset["findings"]]
    out += ["", "## ExternalSecrets", "", *_table(
        ["namespace", "name", "Application", "status", "why"],
        [[e["namespace"], e["name"], e["application"], e["status"], e.get("why")]
         for e in r["external_secrets"]])]
    out += ["", "## PrometheusRule rules", "", *_table(
        ["rule", "group", "source", "status", "why"],
        [[x["rule"], x["group"], x["source"], x["status"], x["why"] + _closest(x)]
         for x in r["rules"]])]
    out += ["", "## Vault configuration"]
    if not r["vault"]:
        out += ["", "No Vault configuration found (no Application installs the Vault/OpenBao "
                "chart, no Vault Helm values file)."]
    for v in r["vault"]:
        app = f" (Application `{v['application']}`)" if v.get("application") else ""
        out += ["", f"### {v['source']}{app}", ""]
        if v.get("error"):
            out.append(f"**cannot be read**: {v['error']}")
            continue
        out += [f"{v['origin']} — {v['mode']}, {v['replicas']} replica(s), storage "
                f"{v['storage']}, judged against {v['judged_against']}"
                + (" (this environment runs it)" if v["in_use"] else "")
                + f". Run it: `{v['run_with']}`", "",
                *_table(["level", "what", "why"],
                        [[f["level"], f["what"], f["why"]] for f in v["findings"]])]
    if r["skipped"] or r["orphans"]:
        out += ["", "## Not deployed", "", *(f"- `{x['file']}`: {x['why']}" for x in r["skipped"]),
                *(f"- {o}: no Application renders it" for o in r["orphans"])]
    return "\n".join(out) + "\n"


HTML = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>Platform repository {{ r.name }}</title>
<style>body{font-family:sans-serif;max-width:72em;margin:2em auto}
table{border-collapse:collapse;margin:.4em 0}
td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}
td.msg{font-family:monospace;font-size:90%;white-space:pre-wrap;word-break:break-word}
section.app{border-left:4px solid #27ae60;padding:0 0 0 .8em;margin:1em 0}
section.app.st-failed{border-color:#c0392b}section.app.st-unservable{border-color:#e67e22}
section.app.other-env{opacity:.6}
.error,.failed,.dead,.cannot{color:#c0392b;font-weight:bold}
.unservable,.risk,.not-expanded,.warning{color:#e67e22}
.ok,.rendered,.synced,.Synced,.Healthy{color:#27ae60}
.adapted,.info,.not-simulated,.unchecked,.offline{color:#7f8c8d}</style>
</head><body>
<h1>Platform repository <code>{{ r.name }}</code>
{%- if r.summary.errors %}: <span class="error">{{ r.summary.errors }} error(s)</span>
{%- endif %}</h1>
<p>{{ where }}</p>
<ul id="summary">{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>
{% if r.repository_findings %}<h2>Repository findings</h2>
<table id="repository-findings"><tr><th>level</th><th>what</th><th>message</th></tr>
{% for f in r.repository_findings %}<tr><td class="{{ f.level }}">{{ f.level }}</td>
<td>{{ f.what }}</td><td class="msg">{{ f.message }}</td></tr>
{% endfor %}</table>{% endif %}
<h2>Applications</h2>
{% for a in r.applications %}
<section class="app st-{{ a.status }}{% if not a.in_environment %} other-env{% endif %}"
 data-app="{{ a.name }}" data-status="{{ a.status }}">
<h3><code>{{ a.name }}</code> <span class="{{ a.status }}">{{ a.status }}</span>
{%- if a.sync %} <span class="{{ a.sync }}">{{ a.sync }}</span> /
 <span class="{{ a.health }}">{{ a.health }}</span>{% endif %}</h3>
<p>file <code>{{ a.file }}</code>
{%- if a.generated_by %}, generated by {{ a.generated_by }}{% endif %}
{%- if a.parents %}, rendered by {{ a.parents|join(", ") }}{% endif %}
{%- if a.platform %}; platform component: {{ a.platform }}{% endif %}</p>
<ul>{% for s in a.sources %}<li>{{ source_text(s) }}</li>{% endfor %}
{% if a.applied %}<li>{{ a.applied }}</li>{% endif %}
{% for m in a.messages or [] %}<li class="msg">Argo CD: {{ m }}</li>{% endfor %}</ul>
{% if a.findings %}<table class="findings"><tr><th>level</th><th>what</th><th>message</th></tr>
{% for f in a.findings %}<tr><td class="{{ f.level }}">{{ f.level }}</td>
<td>{{ f.what }}</td><td class="msg">{{ f.message }}</td></tr>
{% endfor %}</table>{% else %}<p class="ok">no findings</p>{% endif %}
</section>
{% else %}<p>No Argo CD Applications: the repository's objects were read as a tree.</p>
{% endfor %}
{% if r.applicationsets %}<h2>ApplicationSets</h2><ul>
{% for s in r.applicationsets %}<li data-appset="{{ s.name }}"><code>{{ s.name }}</code>
 ({{ s.file }}): {% for g in s.generators %}{{ g.type }}
{%- if g.expanded %} → {{ g.applications }} Application(s)
{%- else %} <span class="not-expanded">not expanded</span>: {{ g.why }}{% endif %}
{%- if not loop.last %}; {% endif %}{% endfor %}
{% if s.findings %}<ul>{% for f in s.findings %}<li><span class="{{ f.level }}">
[{{ f.level }}]</span> {{ f.what }}: {{ f.message }}</li>{% endfor %}</ul>{% endif %}</li>
{% endfor %}</ul>{% endif %}
<h2>ExternalSecrets</h2>
<table id="external-secrets"><tr><th>namespace</th><th>name</th><th>Application</th>
<th>status</th><th>why</th></tr>
{% for e in r.external_secrets %}<tr><td>{{ e.namespace }}</td><td>{{ e.name }}</td>
<td>{{ e.application or "" }}</td><td class="{{ e.status }}">{{ e.status }}</td>
<td class="msg">{{ e.why or "" }}</td></tr>
{% endfor %}</table>
<h2>PrometheusRule rules</h2>
{% if not r.rules %}<p>No PrometheusRule in what the Applications render.</p>{% endif %}
<table id="rules"><tr><th>rule</th><th>group</th><th>source</th><th>status</th><th>why</th></tr>
{% for x in r.rules %}<tr><td>{{ x.rule }}</td><td>{{ x.group }}</td><td>{{ x.source }}</td>
<td class="{{ x.status }}">{{ x.status }}</td><td class="msg">{{ x.why }}{{ closest(x) }}</td></tr>
{% endfor %}</table>
<h2>Vault configuration</h2>
{% for v in r.vault %}<section class="vault" data-source="{{ v.source }}"><h3>{{ v.source }}
{%- if v.application %} (Application <code>{{ v.application }}</code>){% endif %}</h3>
{% if v.error %}<p class="cannot">cannot be read: {{ v.error }}</p>
{% else %}<p>{{ v.origin }} — {{ v.mode }}, {{ v.replicas }} replica(s), storage
 {{ v.storage }}, judged against {{ v.judged_against }}
{%- if v.in_use %} (this environment runs it){% endif %}.
 Run it: <code>{{ v.run_with }}</code></p>
<table><tr><th>level</th><th>what</th><th>why</th></tr>
{% for f in v.findings %}<tr><td class="{{ f.level }}">{{ f.level }}</td><td>{{ f.what }}</td>
<td class="msg">{{ f.why }}</td></tr>
{% endfor %}</table>{% endif %}</section>
{% else %}<p>No Vault configuration found (no Application installs the Vault/OpenBao
 chart, no Vault Helm values file).</p>
{% endfor %}
{% if r.orphans or r.skipped %}<h2>Not deployed</h2><ul>
{% for s in r.skipped %}<li><code>{{ s.file }}</code>: {{ s.why }}</li>{% endfor %}
{% for o in r.orphans %}<li>{{ o }}: no Application renders it</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def html(r: dict[str, Any]) -> str:
    """report.html: one self-contained page (escaped: the repository's text is data)."""
    env = Environment(loader=DictLoader({"html": HTML}), autoescape=True)
    where, items = _headline(r)
    return env.get_template("html").render(r=r, where=where, items=items,
                                           source_text=lambda s: _source_text(s, md=False),
                                           closest=_closest)


def write(report: dict[str, Any], directory: Path) -> dict[str, Path]:
    """report.json, report.md and report.html in `directory` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {k: directory / f"report.{k}" for k in ("json", "md", "html")}
    report = redact_doc(report)
    out["json"].write_text(json.dumps(report, indent=2) + "\n")
    out["md"].write_text(markdown(report))
    out["html"].write_text(html(report))
    return out
