"""The files the Vault component writes, rendered without any process: the HCL parses
(python-hcl2) and says what OpenBao must be told; HAProxy and the service map route the
spec's in-cluster names to the right local address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from harness.backends.local.components.vault import (
    IN_CLUSTER_NAMES,
    KEY_THRESHOLD,
    Vault,
    vault_service_aliases,
)
from harness.backends.local.components.vault.templates import (
    audit_config,
    dev_config,
    haproxy_config,
    node_config,
    retry_join_peers,
)

PLAIN = SerializationOptions(with_comments=False, explicit_blocks=False,
                             strip_string_quotes=True)
AUDIT_LOG = Path("/state/logs/vault-audit.log")
CA = Path("/state/pki/ca.crt")
API = {"vault-0": 18210, "vault-1": 18211, "vault-2": 18212}
CLUSTER = {"vault-0": 18220, "vault-1": 18221, "vault-2": 18222}


def parse(text: str) -> dict[str, Any]:
    """HCL -> dict, failing the test if the text is not valid HCL."""
    return dict(hcl2.loads(text, serialization_options=PLAIN))


def audit_device(cfg: dict[str, Any]) -> dict[str, Any]:
    (audit,) = cfg["audit"]
    return dict(audit["file"]["file"])


def vault_1() -> dict[str, Any]:
    return parse(node_config(
        "vault-1", "staging", api=API["vault-1"], cluster=CLUSTER["vault-1"],
        cert=Path("/state/pki/vault-1.crt"), key=Path("/state/pki/vault-1.key"),
        data=Path("/state/data/vault-1"), peers=retry_join_peers("vault-1", API, CA),
        audit_log=AUDIT_LOG))


def test_names_other_modules_import_still_come_from_the_package() -> None:
    assert Vault.__name__ == "Vault" and Vault.name == "vault"
    assert KEY_THRESHOLD == 3
    for method in ("unseal", "active_node", "health", "wait_new_active", "bao",
                   "snapshot_save", "restore_cluster", "wipe_cluster", "root_token",
                   "init_data", "unseal_keys", "audit_log_of", "kv_put", "wait_voters",
                   "raft_servers", "sealed", "node_client", "configure_kubernetes_auth"):
        assert callable(getattr(Vault, method)), method


def test_dev_config_has_the_audit_device_at_the_given_path_and_telemetry() -> None:
    cfg = parse(dev_config(18200, 18201, "/state/data/vault", AUDIT_LOG))
    device = audit_device(cfg)
    assert device["options"] == [{"file_path": str(AUDIT_LOG), "mode": "0600"}]
    assert cfg["telemetry"] == [{"prometheus_retention_time": "60s",
                                 "disable_hostname": True}]


def test_dev_node_keeps_its_data_on_disk_over_plain_http_on_loopback() -> None:
    cfg = parse(dev_config(18200, 18201, "/state/data/vault", AUDIT_LOG))
    assert cfg["api_addr"] == "http://127.0.0.1:18200"
    (listener,) = cfg["listener"]
    assert listener["tcp"]["address"] == "127.0.0.1:18200"
    assert listener["tcp"]["cluster_address"] == "127.0.0.1:18201"
    assert listener["tcp"]["tls_disable"] == 1
    (storage,) = cfg["storage"]
    # raft on disk, not `server -dev`'s memory: what was written survives down -> up.
    assert storage["raft"]["path"] == "/state/data/vault"
    assert storage["raft"]["node_id"] == "vault"
    assert "retry_join" not in storage["raft"]


def test_node_listens_and_advertises_on_loopback_with_its_own_tls_pair() -> None:
    cfg = vault_1()
    assert cfg["api_addr"] == "https://127.0.0.1:18211"
    assert cfg["cluster_addr"] == "https://127.0.0.1:18221"
    (listener,) = cfg["listener"]
    assert listener["tcp"] == {
        "address": "127.0.0.1:18211", "cluster_address": "127.0.0.1:18221",
        "tls_cert_file": "/state/pki/vault-1.crt", "tls_key_file": "/state/pki/vault-1.key"}
    assert cfg["disable_mlock"] is True


def test_node_raft_storage_has_its_path_id_and_production_timing() -> None:
    (storage,) = vault_1()["storage"]
    raft = storage["raft"]
    assert raft["path"] == "/state/data/vault-1"
    assert raft["node_id"] == "vault-1"
    assert raft["performance_multiplier"] == 1


def test_node_retry_joins_every_other_node_and_never_itself() -> None:
    (storage,) = vault_1()["storage"]
    joins = storage["raft"]["retry_join"]
    assert joins == [
        {"leader_api_addr": "https://127.0.0.1:18210", "leader_ca_cert_file": str(CA)},
        {"leader_api_addr": "https://127.0.0.1:18212", "leader_ca_cert_file": str(CA)}]


def test_node_config_carries_telemetry_and_the_shared_audit_device() -> None:
    cfg = vault_1()
    assert cfg["telemetry"] == [{"prometheus_retention_time": "60s",
                                 "disable_hostname": True}]
    assert audit_device(cfg)["options"] == [{"file_path": str(AUDIT_LOG), "mode": "0600"}]


def test_the_customer_audit_file_holds_the_audit_device_alone() -> None:
    cfg = parse(audit_config(AUDIT_LOG))
    assert set(cfg) == {"audit"}
    assert audit_device(cfg)["options"] == [{"file_path": str(AUDIT_LOG), "mode": "0600"}]


def haproxy_sections(text: str) -> dict[str, list[str]]:
    """'frontend vault' -> its indented lines (comments dropped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            current.append(line.strip())
        else:
            current = sections.setdefault(line.strip(), [])
    return sections


def test_haproxy_binds_loopback_and_health_checks_every_node() -> None:
    servers = list(API.items())
    sections = haproxy_sections(haproxy_config(18300, CA, servers, active_port=18301))
    assert "bind 127.0.0.1:18300" in sections["frontend vault"]
    assert "default_backend vault-nodes" in sections["frontend vault"]
    backend = sections["backend vault-nodes"]
    assert "option httpchk GET /v1/sys/health?standbyok=true" in backend
    assert "http-check expect status 200" in backend
    (defaults,) = [line for line in backend if line.startswith("default-server")]
    assert defaults.split() == ["default-server", "check", "check-ssl", "verify", "required",
                                "ca-file", str(CA), "inter", "500ms", "fall", "1",
                                "rise", "1"]
    assert [line for line in backend if line.startswith("server ")] == [
        "server vault-0 127.0.0.1:18210", "server vault-1 127.0.0.1:18211",
        "server vault-2 127.0.0.1:18212"]
    assert "mode tcp" in sections["defaults"]  # TLS passes through to the nodes
    # `vault-active`: the same nodes, but only the one whose sys/health answers 200
    # without standbyok (a standby answers 429) gets traffic.
    assert "bind 127.0.0.1:18301" in sections["frontend vault-active"]
    active = sections["backend vault-active-node"]
    assert "option httpchk GET /v1/sys/health" in active
    assert [line for line in active if line.startswith("server ")] == [
        "server vault-0 127.0.0.1:18210", "server vault-1 127.0.0.1:18211",
        "server vault-2 127.0.0.1:18212"]


@pytest.mark.parametrize("tls", [True, False])
def test_service_aliases_map_both_schemes_of_every_in_cluster_name(tls: bool) -> None:
    aliases = vault_service_aliases("127.0.0.1:18300", tls)
    assert set(aliases) == {f"{scheme}://{name}:8200" for name in IN_CLUSTER_NAMES
                            for scheme in ("http", "https")}
    for name in IN_CLUSTER_NAMES:
        assert aliases[f"http://{name}:8200"] == "http://127.0.0.1:18300"
        # HA Vault speaks TLS only, so https stays https; the dev server has no TLS.
        assert aliases[f"https://{name}:8200"] == (
            "https://127.0.0.1:18300" if tls else "http://127.0.0.1:18300")
