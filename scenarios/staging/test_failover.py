"""Failover on the staging profile: Vault quorum loss, ESO leader loss, and restarts of
kube-apiserver and etcd — each with the client's view checked (writes, syncs, Secrets)
and the environment healthy again afterwards."""

from __future__ import annotations

import time

import hvac
import pytest
import yaml

from harness import eventually
from harness.clients.argocd import Applications
from harness.drills.probe import NAMESPACE

pytestmark = pytest.mark.slow


def service_write_fails(vault, key: str) -> bool:
    """A write through the Service (as a workload does) is refused or times out."""
    client = hvac.Client(url=vault.address, token=vault.root_token(),
                         verify=str(vault.ctx.pki.ca_cert), timeout=5)
    try:
        client.secrets.kv.v2.create_or_update_secret(path=key, secret={"value": "x-q"},
                                                     mount_point="secret")
    except Exception:  # noqa: BLE001 - refused, 5xx, timeout: all "write failed"
        return True
    return False


def test_quorum_loss_refuses_writes_keeps_secrets_and_recovers_without_loss(staging, probe):
    vault = staging.component("vault")
    keys = [f"q{i}" for i in range(5)]
    for k in keys:
        probe.write(k)
    probe.write("probe")
    probe.wait_secret()
    synced_digest = probe.secret_digest()
    active = vault.active_node()
    down = [active, next(n for n in vault.node_names if n != active)]
    for node in down:
        staging.process(node).kill()
    survivor = next(n for n in vault.node_names if n not in down)

    eventually(lambda: service_write_fails(vault, "heracles-drill/during-quorum-loss"),
               timeout=30, description="writes fail with 2 of 3 nodes down")
    assert vault.active_node() is None  # one voter of three cannot elect a leader
    probe.eso.force_sync(NAMESPACE, "probe")
    probe.eso.wait_error(NAMESPACE, "probe", timeout=60)
    assert probe.secret_digest() == synced_digest  # the Secret keeps its last value

    for node in down:
        staging.start_process(node)
    for node in down:
        assert vault.unseal(node) is True
    vault.wait_voters()
    assert vault.sealed(survivor) is False
    lost = [k for k in keys if probe.read_digest(k) != probe.written[k]]
    assert not lost, f"lost across quorum loss: {lost}"
    # Leadership may still move once the returning nodes catch up: writes recover.
    eventually(lambda: probe.write("probe"), timeout=30, interval=0.5,
               description="writes succeed again")
    probe.wait_secret(timeout=60)
    probe.eso.wait_synced(NAMESPACE, "probe")


def test_killing_the_eso_leader_hands_over_the_lease_and_syncs_continue(staging, probe):
    eso = staging.component("eso")
    leader = eventually(eso.leader, timeout=60, description="an ESO replica leads")
    holder = eso.lease_holder()
    staging.process(leader).kill()
    t0 = time.monotonic()
    new = eventually(lambda: (n := eso.leader()) not in (None, leader) and n,
                     timeout=60, interval=0.2, description="the other replica takes the lease")
    print(f"\nESO leader {leader} killed -> {new} leads after {time.monotonic() - t0:.1f}s")
    assert eso.lease_holder() not in (None, holder)
    probe.write("probe")
    probe.wait_secret(timeout=60)
    staging.start_process(leader)  # it queues for the lease; the leader keeps it
    assert eventually(eso.leader, timeout=10) == new


@pytest.fixture(scope="module")
def argo_app(staging, staging_eso, staging_kube):
    """The staging branch's workload as an Argo CD Application, Synced and Healthy."""
    app = yaml.safe_load((staging.settings.fixtures_dir / "gitops" / "argocd" / "staging" /
                          "apps" / "workload.yaml").read_text())
    app["metadata"]["name"] = "restart-probe"
    app["spec"]["destination"]["namespace"] = "restart-probe"
    staging_eso.apply_object(app, None)
    apps = Applications(staging_kube)
    apps.wait("restart-probe", timeout=120)
    return apps


@pytest.mark.parametrize("process", ["kube-apiserver", "etcd"])
def test_control_plane_restart_keeps_every_secret_and_eso_recovers(staging, probe, process,
                                                                   argo_app):
    """... and Argo CD recovers too: after a hard refresh its Application is Synced and
    Healthy again (its watches and cluster cache were cut by the restart)."""
    before = probe.managed_secrets()
    staging.restart_process(process)
    if process == "etcd":  # the apiserver reconnects by itself; wait until it serves
        eventually(lambda: probe.kube.core.list_namespace(), timeout=30,
                   description="the apiserver serves again after the etcd restart")
    after = probe.managed_secrets()
    assert after == before  # every Secret intact, same data
    probe.write("probe")
    probe.wait_secret(timeout=60)  # ESO's watches and client recovered
    probe.eso.wait_synced(NAMESPACE, "probe")
    argo_app.refresh("restart-probe", hard=True)
    argo_app.wait("restart-probe", timeout=120)
