"""Issue 7, customer Vault configuration: the staging profile runs the server config
from the team's own Helm values (fixtures/samples/kustomize-platform/helm), made local
where it must be, and says what it cannot deliver; a configuration that cannot run the
profile is refused before anything starts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runtime.registry import processes_of_run
from harness.testing import LocalEnvironment

VALUES = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / \
    "kustomize-platform" / "helm" / "vault-values.yaml"


@pytest.fixture(scope="module")
def customer(environment_factory) -> Iterator[LocalEnvironment]:
    with environment_factory.environment(
            "customer-vault", profile="staging", components=("etcd", "kube", "vault"),
            vault_values=VALUES) as plat:
        yield plat


def test_their_server_config_runs_made_local(customer):
    vault = customer.component("vault")
    assert vault.node_names == ["vault-0", "vault-1", "vault-2"]  # server.ha.replicas
    sanitized = vault.client().read("sys/config/state/sanitized")["data"]
    [listener] = sanitized["listeners"]
    # theirs: the listener's telemetry stanza; ours: the address and the TLS files
    assert listener["config"]["telemetry"] == [{"unauthenticated_metrics_access": False}]
    assert listener["config"]["address"].startswith("127.0.0.1:")
    assert listener["config"]["tls_cert_file"].startswith(str(customer.state.pki_dir))
    assert sanitized["storage"]["type"] == "raft"
    assert [s["type"] for s in sanitized["seals"]] == ["shamir"]  # awskms not reachable
    voters = [s for s in vault.raft_servers() if s["voter"]]
    assert len(voters) == 3


def test_the_report_names_what_was_adapted_and_what_is_at_risk(customer):
    vault = customer.component("vault")
    report = json.loads((vault._dir / "values-report.json").read_text())
    levels = {f["what"]: f["level"] for f in report["findings"]}
    assert levels['seal "awskms"'] == "adapted"
    assert levels["storage.raft.performance_multiplier"] == "risk"
    assert levels['service_registration "kubernetes"'] == "adapted"
    assert report["mode"] == "ha-raft" and report["replicas"] == 3


def test_raft_snapshots_and_failover_work_with_their_config(customer, tmp_path):
    vault = customer.component("vault")
    vault.kv_put("customer/probe", value="before-failover")
    snap = vault.snapshot_save(tmp_path / "customer.snap")
    assert snap.stat().st_size > 0
    old = vault.active_node()
    assert old is not None
    t0 = time.monotonic()
    customer.process(old).kill()
    new = vault.wait_new_active(old, timeout=90)
    took = time.monotonic() - t0
    print(f"\nfailover with their config (performance_multiplier unset): {took:.1f}s "
          f"{old} -> {new}")
    assert new != old
    assert vault.kv_get("customer/probe") == {"value": "before-failover"}
    customer.start_process(old)
    assert vault.unseal(old)


def test_a_configuration_that_cannot_run_the_profile_is_refused_cleanly(
        environment_factory, tmp_path):
    consul = tmp_path / "consul-values.yaml"
    consul.write_text(
        'server:\n  ha:\n    enabled: true\n    replicas: 3\n    config: |\n'
        '      listener "tcp" {\n        address = "[::]:8200"\n      }\n'
        '      storage "consul" {\n        path = "vault"\n'
        '        address = "consul-server:8500"\n      }\n')
    settings = environment_factory.settings(
        "consul-vault", profile="staging", components=("etcd", "kube", "vault"),
        vault_values=consul)
    plat = LocalEnvironment(settings)
    with pytest.raises(HarnessError) as err:
        plat.up(mode="session")
    message = str(err.value)
    assert str(consul) in message and "cannot run" in message and 'storage "consul"' in message
    assert "raft snapshot" in message
    assert processes_of_run(plat.record.run_id) == []  # refused before any start
    assert not (settings.state_dir / "data" / "etcd").exists()
