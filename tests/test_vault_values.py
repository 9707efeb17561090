"""The customer's Vault Helm values judged against a profile: every gap is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.vault_config.values import VaultValuesError, load, node_config

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / \
    "kustomize-platform" / "helm" / "vault-values.yaml"


def values(tmp_path: Path, server_yaml: str) -> Path:
    p = tmp_path / "values.yaml"
    p.write_text(server_yaml)
    return p


def levels(vv) -> dict[str, str]:
    return {f.what: f.level for f in vv.findings}


RAFT = """server:
  ha:
    enabled: true
    replicas: {replicas}
    raft:
      enabled: true
      config: |
        listener "tcp" {{
          address = "[::]:8200"
          {tls}
        }}
        storage "raft" {{
          path = "/vault/data"
          {pm}
        }}
"""


def test_the_sample_runs_with_its_gaps_named():
    vv = load(SAMPLE, "staging")
    assert (vv.mode, vv.replicas, vv.storage) == ("ha-raft", 3, "raft")
    assert vv.blocking() == []
    assert levels(vv) == {
        "storage.raft.performance_multiplier": "risk",
        "storage.raft.retry_join": "adapted", 'seal "awskms"': "adapted",
        'listener "tcp"': "adapted", 'service_registration "kubernetes"': "adapted"}


def test_node_config_keeps_theirs_and_replaces_only_machine_bound_parts(tmp_path):
    vv = load(SAMPLE, "staging")
    cfg = json.loads(node_config(vv, "vault-1", 8200, 8201, tmp_path / "c", tmp_path / "k",
                                 tmp_path / "d", [(9200, tmp_path / "ca")]))
    assert cfg["ui"] is True and cfg["log_level"] == "info"
    assert cfg["storage"]["raft"]["snapshot_threshold"] == 4096  # their tunable
    assert cfg["storage"]["raft"]["path"] == str(tmp_path / "d")
    assert cfg["storage"]["raft"]["node_id"] == "vault-1"
    assert cfg["storage"]["raft"]["retry_join"] == [
        {"leader_api_addr": "https://127.0.0.1:9200", "leader_ca_cert_file": str(tmp_path / "ca")}]
    assert cfg["listener"]["tcp"]["address"] == "127.0.0.1:8200"
    assert "seal" not in cfg and "service_registration" not in cfg
    assert cfg["telemetry"]["prometheus_retention_time"] == "30s"  # theirs kept


def test_production_timing_leaves_nothing_at_risk(tmp_path):
    vv = load(values(tmp_path, RAFT.format(replicas=3, tls="", pm="performance_multiplier = 1")),
              "prod")
    assert levels(vv) == {"configuration": "ok", 'listener "tcp"': "adapted"}


@pytest.mark.parametrize(("replicas", "level"), [(1, "cannot"), (2, "risk"), (4, "risk")])
def test_replica_counts_that_cannot_tolerate_a_loss(tmp_path, replicas, level):
    vv = load(values(tmp_path, RAFT.format(replicas=replicas, tls="",
                                           pm="performance_multiplier = 1")), "staging")
    assert levels(vv)["server.ha.replicas"] == level


def test_tls_disabled_is_a_risk(tmp_path):
    vv = load(values(tmp_path, RAFT.format(replicas=3, tls="tls_disable = 1",
                                           pm="performance_multiplier = 1")), "staging")
    assert levels(vv)["listener.tcp.tls_disable"] == "risk"


def test_consul_storage_cannot_run_and_has_no_raft_snapshots(tmp_path):
    vv = load(values(tmp_path, 'server:\n  ha:\n    enabled: true\n    config: |\n'
                     '      storage "consul" {\n        path = "vault"\n      }\n'), "staging")
    [block] = vv.blocking()
    assert block.what == 'storage "consul"'
    assert "raft snapshot" in block.why and "cannot run" in block.why


def test_standalone_file_storage_cannot_deliver_ha(tmp_path):
    vv = load(values(tmp_path, 'server:\n  standalone:\n    config: |\n'
                     '      storage "file" {\n        path = "/vault/data"\n      }\n'), "prod")
    assert vv.mode == "standalone" and vv.replicas == 1
    assert "has no HA: cannot run the prod profile" in vv.blocking()[0].why


def test_a_dev_server_cannot_be_staging(tmp_path):
    vv = load(values(tmp_path, "server:\n  dev:\n    enabled: true\n"), "staging")
    assert vv.blocking()[0].what == "server.dev.enabled"


@pytest.mark.parametrize(("text", "message"), [
    ("server:\n  ha:\n    enabled: true\n    raft:\n      enabled: true\n",
     "server.ha.raft.config is empty"),
    ("server:\n  standalone:\n    config: |\n      storage \"file\" {\n", "not valid HCL"),
    ("server: [", "YAML error"),
])
def test_unusable_values_name_the_file_and_key(tmp_path, text, message):
    path = values(tmp_path, text)
    with pytest.raises(VaultValuesError) as err:
        load(path, "staging")
    assert str(path) in str(err.value) and message in str(err.value)
