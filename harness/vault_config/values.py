"""The customer's Vault configuration, from the Helm values they deploy with
(`server.ha.raft.config`, `server.ha.config`, `server.standalone.config`,
`server.ha.replicas`), run locally for the staging/prod profiles — and an honest account
of what it can and cannot deliver.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def storage(self) -> str:
        storage = self.config.get("storage") or {}
        return next(iter(storage), "none")

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "cannot" and "cannot run" in f.why]

    def report(self) -> dict[str, Any]:
        return {"source": str(self.source), "mode": self.mode, "replicas": self.replicas,
                "storage": self.storage,
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


def load(path: Path, profile: str) -> VaultValues:
    """Read the Helm values, pick the server configuration the chart would use, and
    judge it against what the profile needs (HA failover and raft snapshots for
    staging/prod). Every key the harness reads is checked for its type and named with
    its path when wrong: a bad file is one line, not a traceback from deep inside."""
    where = f"Vault Helm values {path}"
    docs = [d for d in VaultValuesError.load_yaml(path, where) if d is not None]
    if not docs:
        raise VaultValuesError(f"{where}: empty (no Helm values; give the values file you "
                               "deploy Vault with)")
    if len(docs) > 1:
        raise VaultValuesError(f"{where}: {len(docs)} YAML documents; a values file is one")
    values = docs[0]
    if not isinstance(values, dict):
        raise VaultValuesError(f"{where}: the top level must be a mapping of Helm values "
                               f"(server: ...), got {InputError.kind_of(values)}")
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
    vv = VaultValues(path, mode, replicas, config)
    vv.findings = assess(vv, profile)
    return vv


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
