"""The configuration files the Vault component writes, as pure functions of ports and
paths: no I/O and no component, so the rendered text can be unit-tested (and parsed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

TELEMETRY = """\
# Prometheus-format metrics at /v1/sys/metrics (scraped with a token by Observability).
telemetry {{
  prometheus_retention_time = "60s"
  disable_hostname = true
}}

"""

AUDIT = """\
# Every request is audited. OpenBao only allows declarative audit devices (the sys/audit
# API answers "cannot enable audit device via API"); values are HMAC'd by OpenBao itself.
audit "file" "file" {{
  description = "heracles-harness audit log"
  options {{
    file_path = "{audit_log}"
    mode = "0600"
  }}
}}
"""

TELEMETRY_AND_AUDIT = TELEMETRY + AUDIT

NODE_HCL = """\
# {node}: raft member of the heracles-harness Vault cluster (profile {profile}).
ui = false
disable_mlock = true
api_addr = "https://127.0.0.1:{api}"
cluster_addr = "https://127.0.0.1:{cluster}"
cluster_name = "heracles"
# Standbys forward every request to the active node, as HashiCorp Vault OSS standbys do
# (OpenBao >= 2.5 serves reads on standbys by default). Measured (issue 18, drill
# vault-leader-loss): a read-enabled standby that wins the election can stall exactly
# 2.0 s in "pre-seal teardown" (its own core/lock and core/leader invalidations wait out
# maxLockTime, 2 s, for the state lock its promotion holds): 3 kills of 13 here, 3 of 3
# in the 2026-11-26 bench, new active after 3.7-4.6 s. With this: 12 kills, 1.2-2.7 s
# (median 2.1), teardown <= 2 ms; what is left is raft's 1-3 s heartbeat timeout.
disable_standby_reads = true

listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_cert_file = "{cert}"
  tls_key_file = "{key}"
}}

storage "raft" {{
  path = "{data}"
  node_id = "{node}"
  # Production timing (HashiCorp's recommendation): the default 0 means 5, i.e. a
  # 5x slower heartbeat/election timeout, which made failover take ~9 s here.
  performance_multiplier = 1
{joins}}}
"""

RETRY_JOIN = """\
  retry_join {{
    leader_api_addr = "https://127.0.0.1:{api}"
    leader_ca_cert_file = "{ca}"
  }}
"""

DEV_HCL = """\
# vault: the dev profile's single node (heracles-harness). Plain HTTP as the spec's
# development column has it, but raft storage on disk instead of `server -dev`'s memory,
# so its data (policies, roles, KV) survive `harness down` -> `harness up`.
ui = false
api_addr = "http://127.0.0.1:{api}"
cluster_addr = "http://127.0.0.1:{cluster}"
cluster_name = "heracles"

listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_disable = 1
}}

storage "raft" {{
  path = "{data}"
  node_id = "vault"
  performance_multiplier = 1
}}

"""

HAPROXY_CFG = """\
# The Vault Services: `vault` routes to every ready node (unsealed: active or standby),
# `vault-active` only to the active one — as the chart's two Services do.
global
  log stdout format raw local0 info
  maxconn 512

defaults
  mode tcp
  log global
  option tcplog
  timeout connect 2s
  timeout client 120s
  timeout server 120s

frontend vault
  bind 127.0.0.1:{port}
  default_backend vault-nodes

backend vault-nodes
  option httpchk GET /v1/sys/health?standbyok=true
  http-check expect status 200
  default-server check check-ssl verify required ca-file {ca} inter 500ms fall 1 rise 1
{servers}
frontend vault-active
  bind 127.0.0.1:{active_port}
  default_backend vault-active-node

backend vault-active-node
  option httpchk GET /v1/sys/health
  http-check expect status 200
  default-server check check-ssl verify required ca-file {ca} inter 500ms fall 1 rise 1
{servers}"""

IN_CLUSTER_NAMES = ("vault.vault.svc.cluster.local", "vault.vault.svc", "vault.vault")
ACTIVE_IN_CLUSTER_NAMES = ("vault-active.vault.svc.cluster.local", "vault-active.vault.svc",
                           "vault-active.vault")

KEY_SHARES, KEY_THRESHOLD = 5, 3
DEV_KEY_SHARES = DEV_KEY_THRESHOLD = 1  # one node on a laptop: one key, kept 0600
NODES = 3
SERVICE_NAMES = ("vault", "vault.vault", "vault.vault.svc", "vault.vault.svc.cluster.local",
                 "vault-active.vault.svc.cluster.local", "127.0.0.1", "localhost")


def vault_service_aliases(target_hostport: str, tls: bool,
                          names: Iterable[str] = IN_CLUSTER_NAMES) -> dict[str, str]:
    """The spec's in-cluster Vault addresses -> `target_hostport`. HA Vault speaks TLS
    only: the scheme is kept, so a store written with http:// fails as it would in the
    cluster. The dev server has no TLS (the spec's "simplified TLS"): both reach it."""
    return {f"{scheme}://{name}:8200": f"{scheme if tls else 'http'}://{target_hostport}"
            for name in names for scheme in ("http", "https")}


def dev_config(api: int, cluster: int, data: Path | str, audit_log: Path | str) -> str:
    """The dev node's HCL: HTTP listener and one-node raft storage on 127.0.0.1, then
    telemetry and the audit device."""
    return (DEV_HCL.format(api=api, cluster=cluster, data=data)
            + TELEMETRY_AND_AUDIT.format(audit_log=audit_log))


def audit_config(audit_log: Path | str) -> str:
    """The audit device alone: the second config file next to a customer's own config."""
    return AUDIT.format(audit_log=audit_log)


def retry_join_peers(node: str, api_ports: Mapping[str, int],
                     ca: Path) -> list[tuple[int, Path]]:
    """(api port, CA file) of every node but `node`: whom it retry_joins, never itself."""
    return [(port, ca) for name, port in api_ports.items() if name != node]


def node_config(node: str, profile: str, api: int, cluster: int, cert: Path | str,
                key: Path | str, data: Path | str, peers: Iterable[tuple[int, Path | str]],
                audit_log: Path | str) -> str:
    """One raft node's HCL: TLS listener and raft storage on 127.0.0.1, a retry_join
    for every peer (api port, CA file), then telemetry and the audit device."""
    joins = "".join(RETRY_JOIN.format(api=port, ca=ca) for port, ca in peers)
    return (NODE_HCL.format(node=node, profile=profile, api=api, cluster=cluster,
                            cert=cert, key=key, joins=joins, data=data)
            + TELEMETRY_AND_AUDIT.format(audit_log=audit_log))


def haproxy_config(port: int, ca: Path | str, servers: Iterable[tuple[str, int]],
                   active_port: int) -> str:
    """The Services' haproxy.cfg: TCP passthrough on 127.0.0.1:`port` to every
    (node name, api port), health-checked so that only unsealed nodes get traffic; and on
    127.0.0.1:`active_port` to the active node only (sys/health answers 200 there and
    429 on a standby)."""
    lines = "".join(f"  server {name} 127.0.0.1:{api}\n" for name, api in servers)
    return HAPROXY_CFG.format(port=port, ca=ca, servers=lines, active_port=active_port)
