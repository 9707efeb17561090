"""The customer's Vault configuration, from the Helm values they deploy with
(`server.ha.raft.config`, `server.ha.config`, `server.standalone.config`,
`server.ha.replicas`) — a values file, or the Argo CD Application that installs the
Vault/OpenBao chart with its values inline or in valueFiles — run locally for the
staging/prod profiles, and an honest account of what it can and cannot deliver.

Their HCL is parsed (python-hcl2) and each node gets a JSON config (Vault and OpenBao
read both) that keeps everything of theirs that means something on one machine —
storage type and tunables (performance_multiplier, snapshot thresholds...), ui, log
level, telemetry, replicas — and replaces only what cannot exist here: listener and
raft addresses (127.0.0.1 ports), TLS files (the harness CA's), raft paths, retry_join
targets (the local nodes), cloud auto-unseal (Shamir 5/3 instead), Kubernetes service
registration. Each replacement and each gap is a Finding in the report.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

AUTO_UNSEAL = {"awskms", "gcpckms", "azurekeyvault", "transit", "pkcs11", "ocikms",
               "alicloudkms", "kmip"}
# Labelled stanzas of a Vault config (`storage "raft" { ... }`): label -> settings.
BLOCKS = ("listener", "storage", "seal", "service_registration", "ha_storage")


class VaultValuesError(InputError):
    """The values file cannot be used; names the file and the key."""


@dataclass
class Finding:
    level: str  # "ok" | "adapted" | "risk" | "cannot"
    what: str
    why: str

    def line(self) -> str:
        return f"[{self.level}] {self.what}: {self.why}"


@dataclass
class VaultValues:
    source: Path
    mode: str  # "ha-raft" | "ha" | "standalone" | "dev"
    replicas: int
    config: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    origin: str = "Helm values file"  # or the Argo CD Application and its values' layers

    @property
    def storage(self) -> str:
        storage = self.config.get("storage") or {}
        return next(iter(storage), "none")

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "cannot" and "cannot run" in f.why]

    def report(self) -> dict[str, Any]:
        return {"source": str(self.source), "origin": self.origin, "mode": self.mode,
                "replicas": self.replicas, "storage": self.storage,
                "findings": [f.__dict__ for f in self.findings]}


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes on strings and block labels; drop them, and its
    block markers."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def _labelled(where: str, block: str, value: Any) -> dict[str, Any]:
    """A labelled stanza as label -> settings. HCL's `listener "tcp" {...}` parses as
    [{"tcp": {...}}], JSON configs write a mapping or a list of them; anything else (a
    number, a string) is named."""
    items = value if isinstance(value, list) else [value]
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            raise VaultValuesError(f'{where}: {block} must be a block ({block} "<type>" '
                                   f"{{ ... }}), got {InputError.kind_of(value)}")
        for label, body in item.items():
            if body is not None and not isinstance(body, dict):
                raise VaultValuesError(f'{where}: {block} "{label}" must be a block of '
                                       f"settings, got {InputError.kind_of(body)}")
            out[str(label)] = body or {}
    return out


def _settings(where: str, name: str, value: Any) -> dict[str, Any]:
    """An unlabelled stanza (`telemetry { ... }`: [{...}] from HCL, a mapping in JSON)."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, dict) for i in items):
        raise VaultValuesError(f"{where}: {name} must be a block of settings, got "
                               f"{InputError.kind_of(value)}")
    return {k: v for i in items for k, v in i.items()}


def _config_of(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The server configuration in one shape whatever it was written in (HCL text or a
    YAML object), every stanza the harness reads checked for its type."""
    config = {k: v for k, v in raw.items() if k not in (*BLOCKS, "telemetry")}
    for block in BLOCKS:
        if raw.get(block) is not None:
            config[block] = _labelled(where, block, raw[block])
    if raw.get("telemetry") is not None:
        config["telemetry"] = _settings(where, "telemetry", raw["telemetry"])
    pm = ((config.get("storage") or {}).get("raft") or {}).get("performance_multiplier")
    whole = (isinstance(pm, int) and not isinstance(pm, bool) and pm >= 0) or (
        isinstance(pm, str) and pm.isdigit())
    if pm is not None and not whole:
        raise VaultValuesError(f"{where}: storage.raft.performance_multiplier must be a "
                               f"whole number, got {InputError.kind_of(pm)}")
    return config


def parse_hcl(text: str, where: str) -> dict[str, Any]:
    import hcl2

    try:
        parsed = _unquote(hcl2.loads(text))
    except Exception as exc:  # noqa: BLE001 - lark's parse errors, named below
        raise VaultValuesError(f"{where}: not valid HCL: {str(exc).splitlines()[0]}") from None
    if not isinstance(parsed, dict):
        raise VaultValuesError(f"{where}: not a Vault configuration")
    parsed.pop("audit", None)
    return _config_of(where, parsed)


def _mapping(where: str, node: dict[str, Any], path: str) -> dict[str, Any]:
    """`node[last key of path]` as a mapping ({} when absent or null, as Helm merges)."""
    value = node.get(path.rsplit(".", 1)[-1])
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VaultValuesError(f"{where}: {path} must be a mapping, got "
                               f"{InputError.kind_of(value)}")
    return value


def _flag(where: str, node: dict[str, Any], path: str) -> bool:
    value = node.get(path.rsplit(".", 1)[-1])
    if value is None:
        return False
    if not isinstance(value, bool):
        raise VaultValuesError(f"{where}: {path} must be true or false, got "
                               f"{InputError.kind_of(value)}")
    return value


def load(path: Path, profile: str, repo_root: Path | None = None) -> VaultValues:
    """Read the Helm values — a values file, or an Argo CD Application that installs the
    Vault/OpenBao chart (its inline `helm.values`/`valuesObject`, its `valueFiles`, its
    `parameters`; see `application_values`) — pick the server configuration the chart
    would use, and judge it against what the profile needs (HA failover and raft
    snapshots for staging/prod). Every key the harness reads is checked for its type and
    named with its path when wrong: a bad file is one line, not a traceback from deep
    inside. `repo_root`: where an Application's paths are relative to (default: the
    nearest parent of the file that holds them)."""
    where = f"Vault Helm values {path}"
    docs = [d for d in VaultValuesError.load_yaml(path, where) if d is not None]
    if not docs:
        raise VaultValuesError(f"{where}: empty (no Helm values; give the values file you "
                               "deploy Vault with)")
    objects = [d for d in docs if isinstance(d, dict) and d.get("apiVersion") and d.get("kind")]
    if objects:
        app = _vault_application(path, objects, repo_root)
        values, origin = application_values(app, path, repo_root)
        name = (app.get("metadata") or {}).get("name")
        return judge(values, f"Vault Helm values of Argo CD Application {name} ({path})",
                     path, profile, origin)
    if len(docs) > 1:
        raise VaultValuesError(f"{where}: {len(docs)} YAML documents; a values file is one")
    values = docs[0]
    if not isinstance(values, dict):
        raise VaultValuesError(f"{where}: the top level must be a mapping of Helm values "
                               f"(server: ...), got {InputError.kind_of(values)}")
    return judge(values, where, path, profile)


def helm_values(path: Path, repo_root: Path | None = None) -> dict[str, Any]:
    """The Helm values the file gives the Vault chart: a values file as written, or what
    an Argo CD Application installing the chart gives it (`application_values`). What a
    chart backend merges over its own values (`--vault-values` of pods/kind)."""
    where = f"Vault Helm values {path}"
    docs = [d for d in VaultValuesError.load_yaml(path, where) if d is not None]
    objects = [d for d in docs if isinstance(d, dict) and d.get("apiVersion") and d.get("kind")]
    if objects:
        return application_values(_vault_application(path, objects, repo_root), path,
                                  repo_root)[0]
    if len(docs) > 1:
        raise VaultValuesError(f"{where}: {len(docs)} YAML documents; a values file is one")
    values = docs[0] if docs else {}
    if not isinstance(values, dict):
        raise VaultValuesError(f"{where}: the top level must be a mapping of Helm values "
                               f"(server: ...), got {InputError.kind_of(values)}")
    return values


def judge(values: dict[str, Any], where: str, source: Path, profile: str,
          origin: str = "Helm values file") -> VaultValues:
    """The server configuration of merged Helm values (`where` names them in errors),
    judged against the profile."""
    server = _mapping(where, values, "server")
    dev = _mapping(where, server, "server.dev")
    ha = _mapping(where, server, "server.ha")
    raft = _mapping(where, ha, "server.ha.raft")
    standalone = _mapping(where, server, "server.standalone")
    dev_on, ha_on = _flag(where, dev, "server.dev.enabled"), _flag(where, ha, "server.ha.enabled")
    raft_on = _flag(where, raft, "server.ha.raft.enabled")
    if dev_on:
        mode, node, key = "dev", dev, "server.dev"
    elif ha_on and raft_on:
        mode, node, key = "ha-raft", raft, "server.ha.raft.config"
    elif ha_on:
        mode, node, key = "ha", ha, "server.ha.config"
    else:
        mode, node, key = "standalone", standalone, "server.standalone.config"
    text = node.get("config") if mode != "dev" else ""
    if isinstance(text, dict):  # the chart also accepts the config as a YAML object
        config = _config_of(f"{where} ({key})", copy.deepcopy(text))
    elif text is not None and not isinstance(text, str):
        raise VaultValuesError(f"{where}: {key} must be the server configuration as HCL "
                               f"text (config: |) or a mapping, got {InputError.kind_of(text)}")
    elif mode != "dev" and not (text or "").strip():
        raise VaultValuesError(f"{where}: {key} is empty (the chart's default would "
                               "apply; give the configuration you deploy)")
    else:
        config = parse_hcl(text, f"{where} ({key})") if text else {}
    replicas = _replicas(where, ha) if mode.startswith("ha") else 1
    vv = VaultValues(source, mode, replicas, config, origin=origin)
    vv.findings = assess(vv, profile)
    return vv


# ---- an Argo CD Application installing the chart ----------------------------------------
VAULT_CHARTS = ("vault", "openbao")


def _chart_yaml(d: Path) -> dict[str, Any]:
    try:
        meta = yaml.safe_load((d / "Chart.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    """`spec.sources` when set (Argo CD then ignores `spec.source`), else the one."""
    spec = app.get("spec") or {}
    if not isinstance(spec, dict):
        return []
    many = spec.get("sources")
    if isinstance(many, list) and many:
        return [s for s in many if isinstance(s, dict)]
    return [spec["source"]] if isinstance(spec.get("source"), dict) else []


def _parents(start: Path) -> list[Path]:
    """The file's directory and its parents, up to (and with) a Git checkout's root."""
    out = []
    for d in [start, *start.parents]:
        out.append(d)
        if (d / ".git").exists():
            break
    return out


def _vault_umbrella_key(meta: dict[str, Any]) -> str | None:
    for dep in meta.get("dependencies") or []:
        if isinstance(dep, dict) and dep.get("name") in VAULT_CHARTS:
            return str(dep.get("alias") or dep["name"])
    return None


def vault_source(app: dict[str, Any], app_file: Path | None = None,
                 repo_root: Path | None = None) -> tuple[int, str | None] | None:
    """Which source of the Application installs Vault, and the values key when it does
    so as a dependency of the team's own chart (None: the chart itself): `chart: vault`
    or `openbao`, or a path whose Chart.yaml is named so or depends on it. None when the
    Application installs no Vault."""
    roots = [repo_root] if repo_root else _parents(app_file.parent) if app_file else []
    for i, src in enumerate(_sources(app)):
        if str(src.get("chart") or "") in VAULT_CHARTS:
            return i, None
        if src.get("path") is not None and not src.get("chart"):
            for r in roots:
                d = r / str(src["path"])
                if (d / "Chart.yaml").is_file():
                    meta = _chart_yaml(d)
                    if meta.get("name") in VAULT_CHARTS:
                        return i, None
                    key = _vault_umbrella_key(meta)
                    if key:
                        return i, key
                    break
    return None


def _vault_application(path: Path, objects: list[dict[str, Any]],
                       repo_root: Path | None) -> dict[str, Any]:
    """The one Application of the file that installs Vault; anything else is named."""
    apps = [o for o in objects if str(o.get("apiVersion", "")).startswith("argoproj.io/")
            and o.get("kind") == "Application"]
    vault_apps = [a for a in apps if vault_source(a, path, repo_root) is not None]
    if len(vault_apps) == 1:
        return vault_apps[0]
    names = ", ".join(f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}"
                      for o in (vault_apps or apps or objects))
    if len(vault_apps) > 1:
        raise VaultValuesError(f"{path}: {len(vault_apps)} Argo CD Applications install the "
                               f"Vault chart ({names}): give a file with one")
    if apps:
        charts = "; ".join(
            f"{(a.get('metadata') or {}).get('name')}: "
            + ", ".join(str(s.get("chart") or f"path {s.get('path')}") for s in _sources(a))
            for a in apps)
        raise VaultValuesError(
            f"{path}: Argo CD Application(s) {names} install no Vault/OpenBao chart (a "
            f"source with chart vault or openbao, or a path whose Chart.yaml is named so "
            f"or depends on it; found {charts})")
    raise VaultValuesError(
        f"{path}: holds Kubernetes objects ({names}), not Vault Helm values: give the "
        "values file you deploy Vault with, or the Argo CD Application that installs the "
        "Vault/OpenBao chart")


def _helm_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: mappings merged key by key, anything else replaced, null
    removes the key."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _helm_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _set_param(values: dict[str, Any], name: str, raw: Any, force_string: bool,
               where: str) -> None:
    """One `helm --set name=value` (dotted keys; `\\.` escapes a dot)."""
    if "[" in name:
        raise VaultValuesError(f"{where}: parameter {name}: list indexes are not read by "
                               "the harness (give the value in helm.values instead)")
    parts = [p.replace("\0", ".") for p in name.replace("\\.", "\0").split(".")]
    value: Any = str(raw) if force_string else (
        yaml.safe_load(str(raw)) if str(raw) != "" else "")
    cur = values
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


def _values_file(where: str, label: str, path: Path) -> dict[str, Any]:
    docs = [d for d in VaultValuesError.load_yaml(path, f"{where}: {label} {path}")
            if d is not None]
    if len(docs) > 1:
        raise VaultValuesError(f"{where}: {label} {path}: {len(docs)} YAML documents; a "
                               "values file is one")
    value = docs[0] if docs else {}
    if not isinstance(value, dict):
        raise VaultValuesError(f"{where}: {label} {path}: the top level must be a mapping "
                               f"of Helm values, got {InputError.kind_of(value)}")
    return value


def _repo_root_for(app_file: Path, needed: list[str]) -> Path:
    """The nearest parent of the Application's file where every path it names exists."""
    for d in _parents(app_file.resolve().parent):
        if all((d / n).exists() for n in needed):
            return d
    raise VaultValuesError(f"{app_file}: none of its parent directories holds "
                           f"{', '.join(needed)} (the paths the Application names are "
                           "relative to its repository's root; give it with --repo)")


def application_values(app: dict[str, Any], app_file: Path,
                       repo_root: Path | None = None) -> tuple[dict[str, Any], str]:
    """The Helm values Argo CD would give the Vault chart of this Application, merged as
    Helm merges them: `valueFiles` in order (relative to the chart's path in the
    repository, or `$ref/...` of a multi-source ref — read from this repository), then
    the inline values (`valuesObject`, else the `values` string), then `parameters`. When
    Vault is a dependency of the team's chart, that chart's values.yaml comes first and
    the Vault part (its key) is returned. Returns (values, where they came from)."""
    name = (app.get("metadata") or {}).get("name")
    found = vault_source(app, app_file, repo_root)
    if found is None:
        raise VaultValuesError(f"{app_file}: Application {name} installs no Vault chart")
    index, key = found
    srcs = _sources(app)
    src = srcs[index]
    where = f"Argo CD Application {name} ({app_file})"
    at = f"spec.sources[{index}]" if (app.get("spec") or {}).get("sources") else "spec.source"
    helm = src.get("helm") or {}
    if not isinstance(helm, dict):
        raise VaultValuesError(f"{where}: {at}.helm must be a mapping, got "
                               f"{InputError.kind_of(helm)}")
    refs = {str(s["ref"]): s for s in srcs if s.get("ref")}
    files = [str(v) for v in helm.get("valueFiles") or []]
    in_repo = src.get("path") is not None and not src.get("chart")
    needed = ([f"{src['path']}/Chart.yaml"] if in_repo else []) + [
        f.split("/", 1)[1] for f in files if f.startswith("$") and "/" in f
        and not helm.get("ignoreMissingValueFiles")]
    root = repo_root or (_repo_root_for(app_file, needed) if needed else app_file.parent)
    values: dict[str, Any] = {}
    layers: list[str] = []
    if key is not None:
        own = root / str(src["path"]) / "values.yaml"
        if own.is_file():
            values = _values_file(where, "chart values", own)
            layers.append(f"{src['path']}/values.yaml")
    for i, vf in enumerate(files):
        label = f"{at}.helm.valueFiles[{i}]"
        if vf.startswith("$"):
            ref, _, rest = vf[1:].partition("/")
            if ref not in refs:
                raise VaultValuesError(f"{where}: {label} {vf}: no source has ref {ref!r}")
            target = root / rest
        elif re.match(r"^[a-z]+://", vf):
            raise VaultValuesError(f"{where}: {label} {vf}: a URL; nothing can be fetched "
                                   "here (no internet)")
        elif not in_repo:
            raise VaultValuesError(
                f"{where}: {label} {vf}: a file inside the chart {src.get('chart')} from "
                f"{src.get('repoURL')}, not in the repository: the harness reads the "
                "values written in the repository (inline, valuesObject, $ref/... files)")
        else:
            target = root / str(src["path"]) / vf
        if not target.resolve().is_relative_to(root.resolve()):
            raise VaultValuesError(f"{where}: {label} {vf}: resolves outside the repository")
        if not target.is_file():
            if helm.get("ignoreMissingValueFiles"):
                continue
            raise VaultValuesError(f"{where}: {label} {vf}: no such file ({target})")
        values = _helm_merge(values, _values_file(where, label, target))
        layers.append(vf)
    inline: Any = helm.get("valuesObject")
    inline_key = f"{at}.helm.valuesObject"
    if inline is None and helm.get("values") is not None:
        inline_key = f"{at}.helm.values"
        raw = helm["values"]
        if isinstance(raw, str):
            try:
                inline = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise VaultValuesError(
                    VaultValuesError.yaml_problem(f"{where}: {inline_key}", exc)) from None
        else:
            inline = raw
    if inline is not None:
        if not isinstance(inline, dict):
            raise VaultValuesError(f"{where}: {inline_key} must be a mapping of Helm values "
                                   f"(server: ...), got {InputError.kind_of(inline)}")
        values = _helm_merge(values, inline)
        layers.append(inline_key.removeprefix(f"{at}.") + " (inline)")
    for p in helm.get("parameters") or []:
        if isinstance(p, dict) and p.get("name"):
            _set_param(values, str(p["name"]), p.get("value", ""), bool(p.get("forceString")),
                       where)
            layers.append(f"--set {p['name']}")
    if key is not None:
        sub = values.get(key)
        values = sub if isinstance(sub, dict) else {}
    chart = f"chart {src['chart']}" if src.get("chart") else f"path {src.get('path')}"
    origin = (f"Argo CD Application {name}: {at} {chart}"
              + (f" (Vault as its dependency {key})" if key else "")
              + f"; values from {', '.join(layers) if layers else 'nothing (chart defaults)'}")
    if not layers:
        raise VaultValuesError(f"{where}: {at} gives the Vault chart no values (no "
                               "helm.values, valuesObject, valueFiles or parameters): the "
                               "chart's defaults would apply; give the configuration you "
                               "deploy")
    return values, origin


def _replicas(where: str, ha: dict[str, Any]) -> int:
    """server.ha.replicas: a whole number >= 1 (null or absent: the chart's 3)."""
    value = ha.get("replicas")
    if value is None:
        return 3
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise VaultValuesError(f"{where}: server.ha.replicas must be a whole number of at "
                               f"least 1, got {InputError.kind_of(value)}")
    return value


def assess(vv: VaultValues, profile: str) -> list[Finding]:
    """What the configuration delivers against the profile (the spec: staging/prod are
    3-node HA with integrated storage, TLS, raft snapshots in the runbook)."""
    f: list[Finding] = []
    needs_ha = profile in ("staging", "prod")
    storage = vv.storage
    if vv.mode == "dev":
        f.append(Finding("cannot", "server.dev.enabled", "a dev server keeps everything in "
                         "memory: no HA failover, no raft snapshots — cannot run the "
                         f"{profile} profile" if needs_ha else "the dev server (as the "
                         "dev profile runs it)"))
        return f
    if storage != "raft":
        why = (f"storage {storage!r} is not integrated storage: `operator raft snapshot "
               "save/restore` (the runbook's backup) does not exist for it")
        if storage in ("consul", "etcd", "postgresql", "mysql", "dynamodb", "s3", "gcs"):
            why += (f", and its {storage} cluster is not part of this platform — cannot "
                    "run it here")
        elif needs_ha:
            why += f"; {storage!r} has no HA: cannot run the {profile} profile"
        f.append(Finding("cannot", f"storage \"{storage}\"", why))
    elif vv.mode != "ha-raft" and needs_ha:
        f.append(Finding("cannot", "server.ha.enabled", "a standalone raft node has no "
                         "standby to fail over to: HA failover cannot be delivered"))
    if needs_ha and vv.replicas < 3:
        f.append(Finding("cannot" if vv.replicas < 2 else "risk", "server.ha.replicas",
                         f"{vv.replicas} replica(s): raft needs a majority, so losing one "
                         "node stops writes (3 tolerate one loss, 5 tolerate two)"))
    elif vv.replicas % 2 == 0:
        f.append(Finding("risk", "server.ha.replicas", f"{vv.replicas} replicas tolerate "
                         f"no more failures than {vv.replicas - 1}"))
    raft = (vv.config.get("storage") or {}).get("raft") or {}
    if storage == "raft":
        pm = raft.get("performance_multiplier")
        if pm in (None, 0, "0"):
            f.append(Finding("risk", "storage.raft.performance_multiplier",
                             "unset (= 5, the development timing): leader election ~5x "
                             "slower; measured here 8.7 s to a new active node vs 3.7 s "
                             "with 1 (docs/toolchain.md)"))
        if raft.get("retry_join"):
            f.append(Finding("adapted", "storage.raft.retry_join",
                             "pod DNS names replaced by the local nodes' addresses"))
    for name in (vv.config.get("seal") or {}):
        if name in AUTO_UNSEAL:
            f.append(Finding("adapted", f"seal \"{name}\"", f"auto-unseal through {name} "
                             "needs that service: the nodes use Shamir keys (5 shares, "
                             "threshold 3) instead, so restarts need a manual unseal here"))
    tcp = (vv.config.get("listener") or {}).get("tcp") or {}
    if str(tcp.get("tls_disable", "0")).lower() in ("1", "true"):
        f.append(Finding("risk", "listener.tcp.tls_disable", "TLS is off: ESO's token and "
                         "every secret cross the network in clear (the spec's principle: "
                         "TLS everywhere); the harness runs TLS so the spec's stores work"))
    if tcp:
        f.append(Finding("adapted", "listener \"tcp\"", "address/cluster_address bound to "
                         "127.0.0.1 ports; TLS files from the harness CA"))
    if "kubernetes" in (vv.config.get("service_registration") or {}):
        f.append(Finding("adapted", "service_registration \"kubernetes\"", "needs to run "
                         "in a pod: dropped (the harness's Service health-checks instead)"))
    if not f or all(x.level in ("adapted",) for x in f):
        f.insert(0, Finding("ok", "configuration", f"{vv.mode} with {vv.replicas} "
                            f"replica(s) on {storage} storage delivers HA failover and raft "
                            "snapshots"))
    return f


def node_config(vv: VaultValues, node: str, api: int, cluster: int, cert: Path, key: Path,
                data: Path, peers: list[tuple[int, Path]]) -> str:
    """One node's JSON config: theirs, with only the machine-bound parts made local."""
    cfg = copy.deepcopy(vv.config)
    for drop in ("seal", "service_registration", "ha_storage"):
        cfg.pop(drop, None)
    tcp = dict((cfg.get("listener") or {}).get("tcp") or {})
    for k in ("tls_disable", "tls_client_ca_file", "tls_require_and_verify_client_cert"):
        tcp.pop(k, None)
    tcp.update(address=f"127.0.0.1:{api}", cluster_address=f"127.0.0.1:{cluster}",
               tls_cert_file=str(cert), tls_key_file=str(key))
    cfg["listener"] = {"tcp": tcp}
    raft = dict((cfg.get("storage") or {}).get("raft") or {})
    raft.update(path=str(data), node_id=node,
                retry_join=[{"leader_api_addr": f"https://127.0.0.1:{p}",
                             "leader_ca_cert_file": str(ca)} for p, ca in peers])
    cfg["storage"] = {"raft": raft}
    cfg.update(api_addr=f"https://127.0.0.1:{api}",
               cluster_addr=f"https://127.0.0.1:{cluster}", disable_mlock=True)
    telemetry = dict(cfg.get("telemetry") or {})
    telemetry.setdefault("prometheus_retention_time", "60s")  # the harness scrapes it
    telemetry.setdefault("disable_hostname", True)
    cfg["telemetry"] = telemetry
    return json.dumps(cfg, indent=2)
