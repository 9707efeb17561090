"""The drills. Each is a function of (platform, run): set up the client's view, inject
the fault (run.fault), recover as the runbook says, mark when a client sees the service
again (run.restored), check that nothing (or exactly what the backup could not hold) was
lost. They leave the environment healthy, so drills and suites can follow each other."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.backends.base import missing_reason
from harness.drills import database, existing, pods
from harness.drills.model import DrillRun, Objectives, backup_dir
from harness.drills.probe import (
    NAMESPACE,
    Probe,
    caught_up_after_outage,
    delivered_after_failover,
    probe_with_keys,
    wait_eso_reconciling,
    write_during_outage,
)
from harness.errors import HarnessError
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment

HA = ("staging", "prod")
DB = ("prod", "staging")  # the database's drills: prod runs it; staging on request
BACKENDS = ("local", "pods", "existing")
LOCAL = frozenset({"local-processes"})
"""What the local version of a drill needs: it drives the environment's processes."""


@dataclass(frozen=True)
class OnBackend:
    """A drill's version for another backend than local: the same checks and figures,
    the fault and the recovery as that backend can do them — Kubernetes operations on
    pods (harness/drills/pods.py), the APIs and the config's `faults:` on existing
    (harness/drills/existing.py)."""

    description: str
    run: Callable[[Any, DrillRun], None]
    objectives: Objectives | None = None  # None: the drill's own
    needs: frozenset[str] = frozenset()  # capabilities (harness/backends/base.py)
    confirm: str | None = None  # the consequence --yes-restore-vault accepts, if any


OnPods = OnBackend
"""The name the pods versions had first."""


@dataclass(frozen=True)
class Drill:
    name: str
    description: str
    profiles: tuple[str, ...]
    objectives: Objectives
    run: Callable[[Any, DrillRun], None]
    pods: OnBackend | None = None
    existing: OnBackend | None = None
    needs: frozenset[str] = LOCAL  # of this (the local) version
    confirm: str | None = None  # of this version: what --yes-restore-vault accepts
    # Local components it needs beyond a profile's own (staging runs no database): a
    # fresh environment gets them, a running one without them is not reused.
    components: tuple[str, ...] = ()

    @property
    def backends(self) -> tuple[str, ...]:
        return ("local", *(b for b in BACKENDS[1:] if self.variant(b) is not None))

    def variant(self, backend: str) -> OnBackend | None:
        """The version for `backend` (not local), None when there is none."""
        found: OnBackend | None = getattr(self, backend, None) if backend in BACKENDS[1:] \
            else None
        return found

    def needs_on(self, backend: str) -> frozenset[str] | None:
        """The capabilities the drill needs on `backend`; None: it has no version there."""
        if backend == "local":
            return self.needs
        found = self.variant(backend)
        return found.needs if found is not None else None

    def on(self, backend: str) -> Drill:
        """The drill as it runs on `backend` (its description, objectives, steps)."""
        if backend == "local":
            return self
        found = self.variant(backend)
        if found is not None:
            return replace(self, description=found.description, run=found.run,
                           objectives=found.objectives or self.objectives, pods=None,
                           existing=None, needs=found.needs, confirm=found.confirm)
        raise HarnessError(no_version(self, backend))


def no_version(drill: Drill, backend: str) -> str:
    """Why `drill` does not run on `backend`: the backends it has a version for, and what
    each needs."""
    wants = "; ".join(f"{b}: {', '.join(sorted(drill.needs_on(b) or ())) or 'nothing'}"
                      for b in drill.backends)
    return (f"drill {drill.name!r} has no version for the {backend} backend; on {backend}: "
            f"{', '.join(on_backend(backend)) or 'none'} (it runs on "
            f"{', '.join(drill.backends)}, needing {wants})")


def refusal(name: str, backend: str, have: frozenset[str], where: str = "") -> str | None:
    """Why drill `name` cannot run on `backend` having capabilities `have` — no version
    there, or capabilities it needs that the backend lacks (each named with what it
    does) — or None when it can. `where`: the backend's config, named after it."""
    drill = DRILLS[name]
    needs = drill.needs_on(backend)
    if needs is None:
        return no_version(drill, backend)
    why = missing_reason(backend, set(needs), have)
    if why is None:
        return None
    where = f" of {where}" if where else ""
    return (f"drill {name!r} on the {backend} backend{where} needs "
            f"{', '.join(sorted(needs))}; "
            f"missing: {', '.join(sorted(needs - have))} ({why})")


def on_backend(backend: str) -> list[str]:
    """The drills that run on `backend`."""
    return [d.name for d in DRILLS.values() if backend in d.backends]


def vault_leader_loss(platform: LocalEnvironment, run: DrillRun) -> None:
    probe, keys = probe_with_keys(platform, run)
    vault = platform.vault
    old = vault.active_node()
    if old is None:
        raise HarnessError("no active Vault node before the fault")
    platform.process(old).kill()
    run.fault(f"kill -9 the active node {old}")
    t0 = time.monotonic()
    new = vault.wait_new_active(old)
    run.measure("new_active_after_kill", time.monotonic() - t0)
    run.info(f"{new} is active")
    probe.wait_service(timeout=60)
    run.restored("the Vault Service serves reads again")
    delivered_after_failover(probe, run, keys)
    platform.start_process(old)
    run.check(f"{old} restarts sealed", vault.sealed(old) is True)
    vault.unseal(old)
    vault.wait_voters()
    run.recovery(f"{old} unsealed with the original keys and back as a raft voter")


def vault_restore(platform: LocalEnvironment, run: DrillRun) -> None:
    probe, before = probe_with_keys(platform, run)
    vault = platform.vault
    snap = vault.snapshot_save(backup_dir(platform) / f"vault-{int(time.time())}.snap")
    snapshot_at = time.monotonic()
    snapshot_digests = {k: probe.written[k] for k in [*before, "probe"]}
    run.setup(f"vault operator raft snapshot save ({snap.stat().st_size} bytes)")
    after = [f"late{i:02d}" for i in range(5)]
    for k in after:
        probe.write(k)
    probe.write("probe")  # changes after the snapshot: the backup cannot hold them
    run.info(f"{len(after) + 1} writes after the snapshot (beyond the backup)")
    vault.wipe_cluster()
    window = time.monotonic() - snapshot_at
    run.fault("disaster: every Vault node killed and its raft data deleted")
    run.check("the Vault Service serves nothing", not probe.service_answers())

    def step(message: str) -> None:
        run.recovery(message)
        if "service restored" in message and probe.service_answers():
            run.restored("the Vault Service serves reads again (restored data)")

    vault.restore_cluster(snap, step=step)
    probe.wait_service(timeout=30)
    run.restored("the Vault Service serves reads again (restored data)")
    mismatched = [k for k, d in snapshot_digests.items() if probe.read_digest(k) != d]
    survived_late = [k for k in after if probe.read_digest(k) is not None]
    run.check("the data equals the snapshot (every key, by digest)", not mismatched)
    run.check("writes made after the snapshot are gone (as a restore must)", not survived_late)
    lost = len(after) + 1 - len(survived_late)
    run.result.rpo = {"lost": lost, "unit": "write(s)", "window_seconds": round(window, 3),
                      "unexpected_loss": len(mismatched)}
    probe.written["probe"] = snapshot_digests["probe"]
    run.measure("eso_resync", probe.wait_secret(timeout=90))
    run.check("ESO resynced: the Kubernetes Secret matches the restored Vault value", True)
    run.check("unsealed with the ORIGINAL keys (init.json unchanged)",
              all(vault.sealed(n) is False for n in vault.node_names))


def eso_outage(platform: LocalEnvironment, run: DrillRun, hold: float = 5.0) -> None:
    probe = Probe(platform)
    probe.setup()
    eso = platform.eso_operator
    before = probe.managed_secrets()
    run.setup(f"probe synced; {len(before)} ESO-managed Secrets inventoried")
    for proc in eso.processes():
        proc.kill()
    run.fault(f"kill -9 every ESO controller replica ({len(eso.processes())})")
    write_during_outage(probe, run, before, hold)
    if "prometheus" in platform.components:
        prom = platform.prometheus()
        seen = eventually(lambda: prom.query('up{job="external-secrets"} == 0') or None,
                          timeout=30, error=HarnessError,
                          description="Prometheus sees ESO down")
        run.check(f"Prometheus sees {len(seen)} ESO target(s) down", bool(seen))
    for proc in eso.processes():
        platform.start_process(proc.name)  # returns once its /metrics answers (ready)
    run.recovery("ESO replicas started again")
    _eso_back(platform, probe, run)
    caught_up_after_outage(probe, run, before)


def _eso_elects(platform: LocalEnvironment) -> bool:
    """Whether the ESO replicas run with leader election (staging/prod: two replicas and
    a Lease). dev runs one replica without it: there is no leader to wait for."""
    return any("--enable-leader-election=true" in proc.spec.argv
               for proc in platform.eso_operator.processes())


def _eso_back(platform: LocalEnvironment, probe: Probe, run: DrillRun) -> None:
    """After every replica was restarted: wait until ESO works again. With leader
    election one replica must take the Lease first (a killed leader's Lease has to
    expire); without it the restarted replica works at once. Either way ESO is back
    when its ExternalSecret controller reconciles again (counted on the restarted
    processes' fresh /metrics), so the check that follows judges a working ESO."""
    t0 = time.monotonic()
    if _eso_elects(platform):
        leader = eventually(platform.eso_operator.leader, timeout=60, error=HarnessError,
                            description="an ESO replica leads")
        run.measure("leader_after_restart", time.monotonic() - t0)
        run.info(f"{leader} leads (a killed leader's Lease must expire first)")
    else:
        run.info("ESO runs without leader election: no Lease to wait for")

    count = wait_eso_reconciling(probe, 60, "the restarted ESO reconciles ExternalSecrets")
    run.measure("syncing_after_restart", time.monotonic() - t0)
    run.check(f"the restarted ESO is ready and syncing ({count:.0f} ExternalSecret "
              "reconcile(s) since its restart)", True)


def cluster_state_restore(platform: LocalEnvironment, run: DrillRun) -> None:
    probe = Probe(platform)
    probe.setup()
    etcd = platform.etcd
    inventory = _inventory(probe)
    snap = etcd.snapshot_save(backup_dir(platform) / f"etcd-{int(time.time())}.db")
    snapshot_at = time.monotonic()
    run.setup(f"etcdctl snapshot save ({snap.stat().st_size} bytes); "
              f"{len(inventory)} objects inventoried")
    from kubernetes import client

    probe.kube.core.create_namespaced_config_map(NAMESPACE, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="after-snapshot")))
    run.info("1 object created after the snapshot (beyond the backup)")
    etcd.process("etcd").kill()
    etcd.process("etcd").wipe_data()
    window = time.monotonic() - snapshot_at
    run.fault("disaster: etcd killed and its data directory deleted")
    platform.restore_cluster_state(snap, step=run.recovery)

    def listed() -> bool:
        try:
            return bool(probe.eso.get(NAMESPACE, "probe"))
        except Exception:  # noqa: BLE001 - apiserver still starting
            return False

    eventually(listed, timeout=60, interval=0.1, error=HarnessError,
               description="the apiserver serves again")
    run.restored("the apiserver serves the ExternalSecrets again")
    now = _inventory(probe)
    missing = sorted(k for k in inventory if now.get(k) != inventory[k])
    run.check(f"all {len(inventory)} objects are back with the same data", not missing)
    from harness.clients.kube import KubeClient

    gone = KubeClient.absent(probe.kube.core.read_namespaced_config_map, "after-snapshot",
                             NAMESPACE)
    run.check("the object created after the snapshot is gone (as a restore must)", gone)
    run.result.rpo = {"lost": 1 if gone else 0, "unit": "object(s)",
                      "window_seconds": round(window, 3), "unexpected_loss": len(missing)}
    probe.write("probe")
    run.measure("eso_sync_after_restore", probe.wait_secret(timeout=90))
    run.check("ESO syncs again after the restore", True)


def _inventory(probe: Probe) -> dict[str, str]:
    """What a cluster-state restore must bring back: ESO-managed Secrets (data digest),
    ExternalSecrets, ClusterSecretStores, SecretStores (spec digest), Namespaces."""
    from harness.drills.probe import digest

    out = {f"secret:{k}": v for k, v in probe.managed_secrets().items()}
    for plural in ("externalsecrets", "clustersecretstores", "secretstores"):
        listing: Any = probe.kube.custom.list_cluster_custom_object(
            "external-secrets.io", "v1beta1", plural)
        for i in listing["items"]:
            meta = i["metadata"]
            out[f"{plural}:{meta.get('namespace', '')}/{meta['name']}"] = \
                digest(repr(i.get("spec")))
    for ns in probe.kube.core.list_namespace().items:
        assert ns.metadata is not None
        out[f"namespace:{ns.metadata.name}"] = "present"
    return out


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("vault-leader-loss",
          "kill -9 the active Vault node: a standby takes over, clients and ESO carry on.",
          HA, Objectives(rto_seconds=10), vault_leader_loss, OnBackend(
              "kubectl delete pod (grace 0) of the active Vault Pod: a standby takes over, "
              "clients and ESO carry on; the StatefulSet's replacement is unsealed with the "
              "original keys and rejoins as a raft voter.", pods.vault_leader_loss,
              needs=frozenset({"pod-faults", "in-cluster"})),
          existing=OnBackend(
              "The active Vault Pod deleted (grace 0; faults.vault_pods of the config): a "
              "standby takes over, clients and ESO carry on; its controller's replacement "
              "must come back Ready (unsealed by the cluster: the existing backend holds no "
              "unseal keys).", existing.vault_leader_loss,
              needs=frozenset({"pod-faults"}))),
    Drill("vault-restore",
          "Full loss of the Vault cluster (all nodes, all data): a fresh cluster restored "
          "from a raft snapshot, unsealed with the original keys.",
          HA, Objectives(rto_seconds=30), vault_restore, OnBackend(
              "Full loss of the Vault cluster: the StatefulSet scaled to 0 and every PVC "
              "(raft data) deleted. Restored the runbook's way: a snapshot saved in the "
              "active Pod (kubectl exec), one new empty Pod initialised with throw-away "
              "keys, `raft snapshot restore -force`, its server restarted and unsealed with "
              "the ORIGINAL keys; the other Pods rejoin as voters.",
              pods.vault_restore, needs=frozenset({"in-cluster"}))),
    Drill("vault-snapshot-restore",
          "Data lost by accident (every key under the drill's own prefix deleted): Vault "
          "put back from a raft snapshot taken through the API, restored in place through "
          "the API (same cluster, same keys), ESO re-delivering the restored value. Needs "
          "only Vault's API with an admin token and the Kubernetes API.",
          ("dev", *HA), Objectives(rto_seconds=30), existing.vault_snapshot_restore,
          existing=OnBackend(
              "Data lost by accident (every key under secret/heracles-drill/ deleted): "
              "Vault put back from a raft snapshot taken through the API "
              "(sys/storage/raft/snapshot) and restored in place through it, ESO "
              "re-delivering the restored value. The restore rolls ALL of the cluster's "
              "Vault data back to the snapshot: --yes-restore-vault.",
              existing.vault_snapshot_restore, confirm=existing.CONFIRM),
          needs=frozenset()),
    Drill("eso-outage",
          "Every ESO controller killed for a while: Secrets keep their values, and changes "
          "made meanwhile arrive once ESO is back.",
          ("dev", *HA), Objectives(rto_seconds=60), eso_outage, OnBackend(
              "ESO's Deployment scaled to 0 for a while: Secrets keep their values, and "
              "changes made meanwhile arrive once it is scaled back.", pods.eso_outage,
              needs=frozenset({"pod-faults"})),
          existing=OnBackend(
              "ESO's Deployment (faults.eso_deployment of the config) scaled to 0 for a "
              "while: Secrets keep their values, and changes made meanwhile arrive once it "
              "is scaled back (its /metrics tell that it reconciles again).",
              pods.eso_outage, needs=frozenset({"pod-faults", "eso-metrics"}))),
    Drill("cluster-state-restore",
          "etcd lost (data deleted): the cluster state restored from an etcd snapshot; "
          "ExternalSecrets and Secrets are back and ESO syncs again.",
          ("dev", *HA), Objectives(rto_seconds=60), cluster_state_restore),
    Drill("db-pitr",
          "A table dropped by accident while rows stream in: the database recovered to the "
          "last transaction committed before the drop (pgBackRest, --type=xid "
          "--target-exclusive), from the base backup and the WAL archived to region A.",
          DB, Objectives(rto_seconds=120, note="RPO in transactions: none may be lost"),
          database.db_pitr, components=("db",)),
    Drill("db-region-loss",
          "Region A lost (its S3 store and the database server, data and all): a fresh "
          "server restored from region B's replicated copy; the report gives the "
          "replication lag at the moment of loss, and counts only the transactions B "
          "held as unexpected loss.",
          DB, Objectives(rto_seconds=120), database.db_region_loss, components=("db",)),
    Drill("platform-loss",
          "Vault and the database lost together: Vault restored from its raft snapshot, "
          "the credentials re-delivered by ESO from it, then the database restored with "
          "the backup keys those yield — the full chain of a real outage.",
          DB, Objectives(rto_seconds=180), database.platform_loss, components=("db",)),
)}
