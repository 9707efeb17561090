"""Vault, played by OpenBao: the component (component.py) on top of the operations on its
raft cluster (raft.py) and disaster recovery (recovery.py); the files it writes are pure
functions in templates.py. The names the old single module exported stay importable
from here."""

from __future__ import annotations

from harness.backends.local.components.vault.component import Vault
from harness.backends.local.components.vault.templates import (
    AUDIT,
    HAPROXY_CFG,
    IN_CLUSTER_NAMES,
    KEY_SHARES,
    KEY_THRESHOLD,
    NODE_HCL,
    NODES,
    RETRY_JOIN,
    SERVICE_NAMES,
    TELEMETRY,
    TELEMETRY_AND_AUDIT,
    vault_service_aliases,
)

__all__ = ["AUDIT", "HAPROXY_CFG", "IN_CLUSTER_NAMES", "KEY_SHARES", "KEY_THRESHOLD",
           "NODES", "NODE_HCL", "RETRY_JOIN", "SERVICE_NAMES", "TELEMETRY",
           "TELEMETRY_AND_AUDIT", "Vault", "vault_service_aliases"]
