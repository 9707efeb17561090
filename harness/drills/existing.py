"""Drills that need no more than the existing backend offers — Vault's API with an admin
token and the Kubernetes API — and the existing backend's version of the Vault fault
drill, whose fault is a Kubernetes operation named in its config (`faults:`).

`vault-snapshot-restore` runs on any backend whose Vault has integrated (raft) storage:
the local environment (every profile, dev's single node too) and anyone's cluster. It
restores the snapshot IN PLACE, which rolls back every change made to Vault after it —
the drill's writes, but anyone else's too — so on the existing backend it runs only when
the user accepts that (`--yes-restore-vault`; CONFIRM below).

Secret values are compared by digest and never printed; the admin token goes no further
than the hvac client."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.drills.probe import PREFIX, delivered_after_failover, probe_with_keys
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.existing import ExistingEnvironment
    from harness.drills.model import DrillRun
    from harness.drills.probe import ProbePlatform

CONFIRM = ("restores a raft snapshot of the whole Vault cluster in place: every change "
           "anyone makes to Vault between the snapshot and the restore (the drill's few "
           "seconds) is lost too, not only the drill's own keys under "
           f"secret/{PREFIX}/")
"""What `--yes-restore-vault` accepts on a cluster the harness does not own."""

LATE_WRITES = 5


def _backup_dir(platform: Any) -> Path:
    path = Path(platform.settings.state_dir) / "backups" / "drills"
    path.mkdir(parents=True, exist_ok=True)
    return path


def raft_servers(admin: Any, address: str) -> list[dict[str, Any]]:
    """The raft configuration's servers (GET sys/storage/raft/configuration); refused
    with the reason when Vault has no integrated storage or the token may not read it —
    before the drill changes anything."""
    import hvac

    try:
        data = admin.sys.read_raft_config()
        servers = list(data["data"]["config"]["servers"])
    except (hvac.exceptions.VaultError, KeyError, TypeError) as exc:
        raise HarnessError(f"Vault at {address} does not answer "
                           f"sys/storage/raft/configuration ({type(exc).__name__}: {exc}): "
                           "the drill needs integrated (raft) storage and a token allowed "
                           "to take and restore raft snapshots") from None
    return servers


def take_snapshot(admin: Any) -> bytes:
    """GET sys/storage/raft/snapshot: the whole cluster's data (encrypted by its keyring),
    a gzipped tar."""
    response = admin.sys.take_raft_snapshot()
    data: bytes = response.content
    if response.status_code != 200 or data[:2] != b"\x1f\x8b":
        raise HarnessError(f"sys/storage/raft/snapshot answered {response.status_code} with "
                           f"{len(data)} bytes that are not a snapshot (gzip)")
    return data


def vault_snapshot_restore(platform: ProbePlatform, run: DrillRun) -> None:
    vault = platform.vault
    # before the drill changes anything: a Vault without raft storage is refused
    servers = raft_servers(vault.client(), vault.address)
    probe, before = probe_with_keys(platform, run)
    admin = vault.client()
    run.info(f"Vault has integrated (raft) storage: {len(servers)} server(s)")

    data = take_snapshot(admin)
    snapshot_at = time.monotonic()
    snap = _backup_dir(platform) / f"vault-api-{int(time.time())}.snap"
    write_private(snap, data)  # 0600; the operator's copy should the restore fail
    snapshot_digests = {k: probe.written[k] for k in [*before, "probe"]}
    run.setup(f"raft snapshot taken through the API (GET sys/storage/raft/snapshot, "
              f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}), kept "
              f"0600 in {snap}")

    late = [f"late{i:02d}" for i in range(LATE_WRITES)]
    for k in late:
        probe.write(k)
    probe.write("probe")  # a change after the snapshot: the backup cannot hold it
    run.measure("eso_sync_before_accident", probe.wait_secret(timeout=90, force=True))
    run.info(f"{len(late) + 1} writes after the snapshot (beyond the backup); ESO "
             "delivered the new probe value")

    vault.kv_delete_tree(PREFIX)
    window = time.monotonic() - snapshot_at
    run.fault(f"accident: every key under secret/{PREFIX}/ deleted (metadata and all "
              "versions)")
    run.check("the drill's keys are gone from Vault",
              probe.read_digest("probe") is None and probe.read_digest(before[0]) is None)

    t0 = time.monotonic()
    admin.sys.restore_raft_snapshot(data)
    run.measure("restore_call", time.monotonic() - t0)
    run.recovery("POST sys/storage/raft/snapshot: the snapshot restored in place (the same "
                 "cluster and keyring: no unseal)")
    run.measure("vault_serving_after_restore", probe.wait_service(timeout=60))
    run.info("Vault serves the restored data")
    probe.written["probe"] = snapshot_digests["probe"]
    run.measure("eso_resync", probe.wait_secret(timeout=90, force=True))
    run.restored("ESO re-delivered the restored value to the Kubernetes Secret (force-sync)")

    mismatched = [k for k, d in snapshot_digests.items() if probe.read_digest(k) != d]
    survived = [k for k in late if probe.read_digest(k) is not None]
    run.check(f"the data equals the snapshot (all {len(snapshot_digests)} keys, by digest)",
              not mismatched)
    run.check("writes made after the snapshot are gone (as a restore must)", not survived)
    run.result.rpo = {"lost": len(late) + 1 - len(survived), "unit": "write(s)",
                      "window_seconds": round(window, 3),
                      "unexpected_loss": len(mismatched)}
    health = admin.sys.read_health_status(method="GET")
    unsealed = isinstance(health, dict) and health.get("sealed") is False
    run.check("Vault unsealed and the admin token still valid after the restore",
              unsealed and bool(admin.auth.token.lookup_self()))
    if not mismatched:
        snap.unlink()
        run.info("the snapshot file removed (the restore is verified)")


def vault_leader_loss(platform: ExistingEnvironment, run: DrillRun) -> None:
    """The active Vault Pod deleted (faults.vault_pods): a standby takes over. The
    existing backend holds no unseal keys: the replacement must come back Ready by the
    cluster's own means (auto-unseal, an operator); the drill says when it does not."""
    probe, keys = probe_with_keys(platform, run)
    faults = platform.faults(probe.kube)
    pods = faults.vault_pods()
    if len(pods) < 2:
        raise HarnessError(f"vault-leader-loss needs an HA Vault: {len(pods)} Pod(s) match "
                           f"faults.vault_pods {faults.faults['vault_pods']} of "
                           f"{platform.config.source}")
    old = faults.wait_vault_active(timeout=60)
    old_uid = faults.delete_vault_pod(old, grace_seconds=0)
    run.fault(f"kubectl delete pod {old} --grace-period=0 (the active Vault Pod)")
    t0 = time.monotonic()
    run.measure("vault_serving_after_delete", probe.wait_service(timeout=60))
    run.restored("Vault's address serves reads again")

    def other_active() -> str | None:
        name = faults.wait_vault_active(timeout=5)
        return name if name != old else None

    new = eventually(other_active, timeout=60, interval=0.2, error=HarnessError,
                     retry_on=(Exception,), description="another Vault Pod active")
    run.measure("new_active_after_delete", time.monotonic() - t0)
    run.info(f"{new} is active")
    delivered_after_failover(probe, run, keys)
    t1 = time.monotonic()
    try:
        faults.wait_vault_pod_replaced(old, old_uid, timeout=180)
        whole = True
    except Exception:  # noqa: BLE001 - a timeout of any kind: the cluster is not whole
        whole = False
    run.measure("replacement_ready", time.monotonic() - t1)
    run.check(f"the replacement of {old} is Ready within 180 s (if it waits sealed: "
              "unseal it as the runbook says; the existing backend holds no keys)", whole)
