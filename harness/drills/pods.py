"""The drills on the `pods` backend: the same faults, checks and figures as the local
drills (catalog.py), done the runbook's way on Kubernetes — `kubectl delete pod`,
`kubectl scale`, `kubectl exec ... bao ...` — against the platform installed from its
Helm charts (Vault: the chart's StatefulSet of 3 raft Pods with TLS, initialised with 5
key shares / threshold 3; ESO: the chart's Deployment).

Tokens and unseal keys travel over stdin into the Pod, never in an argv; secret values
are compared by digest and never printed."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.drills.model import DrillRun
from harness.drills.probe import (
    PREFIX,
    Probe,
    caught_up_after_outage,
    delivered_after_failover,
    probe_with_keys,
    wait_eso_reconciling,
    write_during_outage,
)
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.redact import REDACTOR
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.pods.environment import PodsEnvironment
    from harness.clients.kube import KubeClient

NS = "vault"
STATEFULSET = "vault"
IN_POD = "/home/vault"  # the chart's emptyDir HOME: writable, gone with the Pod
ESO_LEASE = "external-secrets-controller"  # controller-runtime's LeaderElectionID


def _ready(pod: Any) -> bool:
    conds = (pod.status.conditions or []) if pod.status else []
    return any(c.type == "Ready" and c.status == "True" for c in conds)


def _labelled_active(pod: Any) -> bool:
    labels = pod.metadata.labels or {}
    return "true" in (labels.get("vault-active"), labels.get("openbao-active"))


def _backup_dir(platform: PodsEnvironment) -> Path:
    path = platform.dir / "backups" / "drills"
    path.mkdir(parents=True, exist_ok=True)
    return path


class VaultPods:
    """Vault's Pods as the runbook drives them: `kubectl exec` (bao inside the Pod, the
    token and keys over stdin), `kubectl scale statefulset`, `kubectl delete`."""

    def __init__(self, platform: PodsEnvironment, kube: KubeClient) -> None:
        self.env = platform
        self.kube = kube
        self.faults = platform.faults(kube)

    @property
    def names(self) -> list[str]:
        return self.env.vault_pods()

    def root_token(self) -> str:
        token = (self.env.dir / "root-token").read_text().strip()
        REDACTOR.add(token)
        return token

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.env.run_kubectl(*args, input_=stdin)

    def bao(self, pod: str, *args: str, token: str | None = None, stdin: str = "") -> str:
        return self.env.run_bao(pod, token or self.root_token(), *args, stdin=stdin)

    def exec_bytes(self, pod: str, argv: list[str], stdin: bytes = b"") -> bytes:
        """`kubectl exec -i` with binary stdin/stdout (a snapshot in or out)."""
        run = subprocess.run([self.env.kubectl, "--kubeconfig", str(self.env.config.kubeconfig),
                              "exec", "-i", "-n", NS, pod, "--", *argv], input=stdin,
                             capture_output=True, timeout=300)
        if run.returncode != 0:
            err = run.stderr.decode(errors="replace").strip()[-500:]
            raise HarnessError(f"kubectl exec {pod} -- {argv[0]}: {REDACTOR.redact(err)}")
        return run.stdout

    # ---- state, as `bao status` / the API see it -------------------------------------
    def pod(self, name: str) -> Any | None:
        return next((p for p in self.faults.vault_pods() if p.metadata.name == name), None)

    def status(self, pod: str) -> dict[str, Any] | None:
        """`bao status -format=json` in the Pod (exit 2, sealed, is an answer too); None
        while the Pod or its server does not answer."""
        try:
            out = self.kubectl("exec", "-n", NS, pod, "--", "sh", "-c",
                               "bao status -format=json || true")
            data = json.loads(out)
        except (HarnessError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def sealed(self, pod: str) -> bool | None:
        status = self.status(pod)
        return None if status is None else bool(status.get("sealed"))

    def active(self, exclude: str | None = None) -> str | None:
        """The Pod service registration labels active (`vault-active=true`; OpenBao's
        `openbao-active=true`), Ready (not `exclude`)."""
        return next((str(p.metadata.name) for p in self.faults.vault_pods()
                     if _labelled_active(p) and p.metadata.name != exclude and _ready(p)),
                    None)

    def raft_peers(self) -> list[dict[str, Any]]:
        """`bao operator raft list-peers` on the active Pod."""
        pod = self.faults.wait_vault_active()
        out = self.bao(pod, "operator", "raft", "list-peers", "-format=json")
        return list(json.loads(out)["data"]["config"]["servers"])

    def wait_voters(self, timeout: float = 180) -> None:
        want = set(self.names)

        def all_voters() -> bool:
            voters = {s["node_id"] for s in self.raft_peers() if s.get("voter")}
            if voters != want:
                raise AssertionError(f"raft voters {sorted(voters)}; expected {sorted(want)}")
            return True

        eventually(all_voters, timeout=timeout, interval=1, error=HarnessError,
                   description="every Vault Pod a raft voter (bao operator raft list-peers)")

    def wait_all_ready(self, timeout: float = 180) -> None:
        want = set(self.names)
        eventually(lambda: {p.metadata.name for p in self.faults.vault_pods() if _ready(p)}
                   == want, timeout=timeout, interval=1, error=HarnessError,
                   description=f"Vault Pods {', '.join(sorted(want))} Ready")

    def wait_replacement_answers(self, name: str, old_uid: str, timeout: float = 120) -> None:
        """The StatefulSet's new Pod `name` (another uid) Running and its server answering
        `bao status` (sealed or not)."""
        def answers() -> bool:
            pod = self.pod(name)
            if pod is None or pod.metadata.uid == old_uid or pod.status.phase != "Running":
                return False
            return self.status(name) is not None

        eventually(answers, timeout=timeout, interval=0.5, error=HarnessError,
                   description=f"the StatefulSet's new {name} Running and answering")

    def service_reads(self, timeout: float = 1.0) -> bool:
        """A read of the probe's key through the Vault Service the host reaches
        (`vault-active`, by the node's bridge), given `timeout` seconds: a Service
        without endpoints can hold a connection open for long, which would add to the
        RTO it measures."""
        import requests

        ca = self.env.config.vault_ca_cert
        try:
            answer = requests.get(f"{self.env.vault.address}/v1/secret/data/{PREFIX}/probe",
                                  headers={"X-Vault-Token": self.root_token()},
                                  verify=str(ca) if ca else True, timeout=timeout)
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def wait_service(self, timeout: float = 60) -> None:
        eventually(self.service_reads, timeout=timeout, interval=0.1, error=HarnessError,
                   description="the Vault Service serves reads")

    # ---- backup and disaster -------------------------------------------------------------
    def snapshot_save(self, path: Path) -> str:
        """`bao operator raft snapshot save` inside the active Pod, copied out with
        `kubectl exec cat` (binary) into `path` (0600: the encrypted data and keyring);
        returns the Pod it was taken on."""
        pod = self.faults.wait_vault_active()
        inside = f"{IN_POD}/drill.snap"
        self.bao(pod, "operator", "raft", "snapshot", "save", inside)
        want = self.exec_bytes(pod, ["sha256sum", inside]).split()[0].decode()
        data = self.exec_bytes(pod, ["cat", inside])
        self.exec_bytes(pod, ["rm", "-f", inside])
        if hashlib.sha256(data).hexdigest() != want:
            raise HarnessError(f"the raft snapshot copied from {pod} differs from the one "
                               f"in the Pod ({len(data)} bytes)")
        write_private(path, data)
        return pod

    def copy_in(self, pod: str, data: bytes, inside: str) -> None:
        """`kubectl exec -i ... cat > file`, checked by sha256 in the Pod and tried again
        when short: a remote command that prints nothing can end before it has read all
        of stdin (found here: 32768 of 40473 bytes, `exec` exit status 0)."""
        want = hashlib.sha256(data).hexdigest()

        def once() -> bool:
            out = self.exec_bytes(pod, ["sh", "-c", f"cat > {inside} && sha256sum {inside}"],
                                  stdin=data)
            got = out.split()[0].decode() if out.split() else ""
            if got != want:
                raise HarnessError(f"{inside} in {pod}: sha256 {got[:12]}, sent {want[:12]}")
            return True

        eventually(once, timeout=60, interval=1, retry_on=(HarnessError,), error=HarnessError,
                   description=f"the snapshot copied into {pod}, whole")

    def scale(self, replicas: int) -> None:
        self.kube.apps.patch_namespaced_stateful_set_scale(
            STATEFULSET, NS, {"spec": {"replicas": replicas}})

    def claims(self) -> list[Any]:
        """The StatefulSet's PersistentVolumeClaims (`<template>-vault-<i>`): Vault's raft
        data."""
        sts: Any = self.kube.apps.read_namespaced_stateful_set(STATEFULSET, NS)
        prefixes = tuple(f"{t.metadata.name}-{STATEFULSET}-"
                         for t in sts.spec.volume_claim_templates or [])
        claims: list[Any] = self.kube.core.list_namespaced_persistent_volume_claim(NS).items
        return [c for c in claims if prefixes and c.metadata.name.startswith(prefixes)]

    def wipe(self, step: Callable[[str], None]) -> None:
        """Disaster: every Vault Pod gone (StatefulSet scaled to 0) and every PVC deleted,
        the provisioner deleting the volumes (the raft data) with them."""
        count = len(self.names)
        self.scale(0)
        eventually(lambda: not self.faults.vault_pods(), timeout=180, interval=0.5,
                   error=HarnessError, description="every Vault Pod gone")
        step(f"kubectl scale statefulset/{STATEFULSET} --replicas=0: {count} Vault Pods gone")
        claims = self.claims()
        volumes = [c.spec.volume_name for c in claims if c.spec and c.spec.volume_name]
        for c in claims:
            self.kube.core.delete_namespaced_persistent_volume_claim(c.metadata.name, NS)
        names = {c.metadata.name for c in claims}
        eventually(lambda: not (names & {c.metadata.name for c in self.claims()}),
                   timeout=120, interval=0.5, error=HarnessError,
                   description="Vault's PVCs deleted")

        def volumes_gone() -> bool:
            listed: list[Any] = self.kube.core.list_persistent_volume().items
            left = {v.metadata.name for v in listed}
            return not (left & set(volumes))

        eventually(volumes_gone, timeout=180, interval=0.5, error=HarnessError,
                   description="their volumes deleted by the provisioner")
        step(f"kubectl delete pvc {' '.join(sorted(names))}: their {len(volumes)} volumes "
             "(Vault's raft data) deleted by the provisioner")

    # ---- restore ---------------------------------------------------------------------
    def _unseal_with(self, pod: str, keys: list[str]) -> None:
        for key in keys:
            self.kubectl("exec", "-i", "-n", NS, pod, "--", "sh", "-c",
                         'read -r key; exec bao operator unseal "$key" >/dev/null',
                         stdin=f"{key}\n")

    def _wait_status(self, pod: str, check: Callable[[dict[str, Any]], bool], what: str,
                     timeout: float = 120) -> None:
        def ok() -> bool:
            status = self.status(pod)
            return status is not None and check(status)

        eventually(ok, timeout=timeout, interval=0.3, error=HarnessError,
                   description=f"{pod} {what}")

    def restore_first(self, snapshot: Path, throwaway: Path,
                      step: Callable[[str], None]) -> str:
        """The runbook's restore on one fresh Pod: StatefulSet to 1 (vault-0 on a new,
        empty PVC), `operator init` (throw-away keys, kept apart from the original ones),
        unseal, `operator raft snapshot restore -force` (the snapshot's keyring replaces
        the throw-away one: the node seals), restart its server (OpenBao keeps the
        throw-away seal configuration until its process restarts) and unseal it with the
        ORIGINAL keys. Returns the Pod (it becomes active; the Service publishes it
        before the readiness probe passes)."""
        first = self.names[0]
        self.scale(1)
        self._wait_status(first, lambda s: s.get("initialized") is False,
                          "Running, empty (not initialised)", timeout=240)
        step(f"kubectl scale statefulset/{STATEFULSET} --replicas=1: {first} started "
             "empty on a new PVC")
        init = json.loads(self.kubectl("exec", "-n", NS, first, "--", "bao", "operator",
                                       "init", "-key-shares=1", "-key-threshold=1",
                                       "-format=json"))
        REDACTOR.add(init["root_token"], *init["unseal_keys_b64"], *init["unseal_keys_hex"])
        write_private(throwaway, json.dumps(init).encode())
        self._unseal_with(first, init["unseal_keys_b64"][:1])
        self._wait_status(first, lambda s: s.get("is_self") is True, "active")
        step(f"bao operator init on {first}: throw-away keys (kept apart from the "
             f"original ones, in {throwaway.name}), unsealed with them, active")
        self.restore_snapshot(first, snapshot, init["root_token"], step)
        return first

    def restore_snapshot(self, first: str, snapshot: Path, token: str,
                         step: Callable[[str], None]) -> None:
        """On `first`, unsealed and active under throw-away keys (`token`: their root
        token): the snapshot restored, the server restarted, unsealed with the original
        keys and active."""
        data = snapshot.read_bytes()
        self.copy_in(first, data, f"{IN_POD}/restore.snap")
        step(f"the snapshot copied into {first} ({len(data)} bytes, sha256 checked)")
        self.bao(first, "operator", "raft", "snapshot", "restore", "-force",
                 f"{IN_POD}/restore.snap", token=token)
        self._wait_status(first, lambda s: s.get("sealed") is True,
                          "sealed (the snapshot's keyring is not the throw-away one)")
        step(f"bao operator raft snapshot restore -force on {first}: it seals")
        self.restart_server(first)
        eventually(functools.partial(self.env.unseal_pod, first), timeout=120,
                   interval=0.5, retry_on=(HarnessError,), error=HarnessError,
                   description=f"{first} unsealed with the original keys")
        step(f"{first}'s server restarted in its Pod (OpenBao drops the throw-away seal "
             "config) and unsealed with the ORIGINAL keys")

    def restart_server(self, pod: str, timeout: float = 120) -> None:
        """The server process stopped (SIGTERM) and the kubelet's restart of the
        container awaited, until the new one answers `bao status`. Not `kubectl delete
        pod`: a new Pod would start while the old container still holds raft's bolt
        file ("failed to open bolt file: timeout", a crash and a restart more)."""
        def restarts() -> int:
            found = self.pod(pod)
            statuses = (found.status.container_statuses or []) if found else []
            return sum(int(c.restart_count or 0) for c in statuses)

        before = restarts()
        try:
            self.kubectl("exec", "-n", NS, pod, "--", "sh", "-c", "kill -TERM $(pidof bao)")
        except HarnessError:
            pass  # the exec may go down with the container; the restart count tells
        eventually(lambda: restarts() > before and self.status(pod) is not None,
                   timeout=timeout, interval=0.3, error=HarnessError,
                   description=f"{pod}'s server restarted by the kubelet and answering")

    def rejoin_others(self, step: Callable[[str], None]) -> None:
        """StatefulSet back to its replicas: the new, empty Pods retry_join the restored
        leader and are unsealed with the original keys, as at install."""
        first, *others = self.names
        self.scale(len(self.names))
        for pod in others:
            eventually(functools.partial(self.env.unseal_pod, pod), timeout=240,
                       interval=1, retry_on=(HarnessError,), error=HarnessError,
                       description=f"{pod} joins {first} and unseals with the original keys")
        self.wait_all_ready()
        self.wait_voters()
        step(f"kubectl scale statefulset/{STATEFULSET} --replicas={len(self.names)}: "
             f"{', '.join(others)} joined {first}, unsealed with the original keys; every "
             "Pod a raft voter")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the drills ------------------------------------------------------------------------
def vault_leader_loss(platform: PodsEnvironment, run: DrillRun) -> None:
    probe, keys = probe_with_keys(platform, run)
    pods = VaultPods(platform, probe.kube)
    pods.wait_all_ready(timeout=60)
    pods.wait_voters(timeout=60)
    old = pods.faults.wait_vault_active()
    old_uid = pods.faults.delete_vault_pod(old, grace_seconds=0)
    run.fault(f"kubectl delete pod {old} --grace-period=0 (the active Vault Pod)")
    t0 = time.monotonic()
    new = eventually(lambda: pods.active(exclude=old), timeout=60, interval=0.1,
                     error=HarnessError, description="another Vault Pod active and Ready")
    run.measure("new_active_after_delete", time.monotonic() - t0)
    run.info(f"{new} is active (service registration's label, Ready)")
    pods.wait_service(timeout=60)
    run.restored("the Vault Service (vault-active) serves reads again")
    probe.write("probe")
    run.measure("write_after_fault", run.now() - (run.result.fault_at or 0.0))
    delivered_after_failover(probe, run, keys, written=True)
    pods.wait_replacement_answers(old, old_uid)
    run.check(f"the StatefulSet's replacement {old} starts sealed", pods.sealed(old) is True)
    t1 = time.monotonic()
    pods.faults.wait_vault_pod_replaced(old, old_uid)
    pods.wait_voters()
    run.measure("replacement_voter_after_unseal", time.monotonic() - t1)
    run.recovery(f"{old} unsealed with the original keys (kubectl exec) and back as a raft "
                 "voter (bao operator raft list-peers)")


def vault_restore(platform: PodsEnvironment, run: DrillRun) -> None:
    probe, before = probe_with_keys(platform, run)
    pods = VaultPods(platform, probe.kube)
    init_file = platform.dir / "vault-init.json"
    init_digest = _file_digest(init_file)
    stamp = int(time.time())
    backups = _backup_dir(platform)
    snap = backups / f"vault-{stamp}.snap"
    taken_on = pods.snapshot_save(snap)
    snapshot_at = time.monotonic()
    snapshot_digests = {k: probe.written[k] for k in [*before, "probe"]}
    run.setup(f"bao operator raft snapshot save on {taken_on}, copied out with kubectl "
              f"exec ({snap.stat().st_size} bytes)")
    after = [f"late{i:02d}" for i in range(5)]
    for k in after:
        probe.write(k)
    probe.write("probe")  # changes after the snapshot: the backup cannot hold them
    run.info(f"{len(after) + 1} writes after the snapshot (beyond the backup)")
    t0 = time.monotonic()
    pods.wipe(run.info)
    run.measure("disaster_took", time.monotonic() - t0)
    window = time.monotonic() - snapshot_at
    run.fault("disaster: every Vault Pod gone and its raft data (PVC, volume) deleted")
    run.check("the Vault Service serves nothing", not pods.service_reads())
    first = pods.restore_first(snap, backups / f"vault-{stamp}-throwaway-init.json",
                               run.recovery)
    pods.wait_service(timeout=60)
    run.restored("the Vault Service (vault-active) serves reads again (restored data)")
    eventually(lambda: pods.active() == first, timeout=120, interval=0.3, error=HarnessError,
               description=f"{first} active and Ready")
    run.info(f"{first} Ready and labelled active")
    mismatched = [k for k, d in snapshot_digests.items() if probe.read_digest(k) != d]
    survived_late = [k for k in after if probe.read_digest(k) is not None]
    run.check("the data equals the snapshot (every key, by digest)", not mismatched)
    run.check("writes made after the snapshot are gone (as a restore must)", not survived_late)
    lost = len(after) + 1 - len(survived_late)
    run.result.rpo = {"lost": lost, "unit": "write(s)", "window_seconds": round(window, 3),
                      "unexpected_loss": len(mismatched)}
    t1 = time.monotonic()
    pods.rejoin_others(run.recovery)
    run.measure("cluster_whole_after_restore", time.monotonic() - t1)
    probe.written["probe"] = snapshot_digests["probe"]
    run.measure("eso_resync", probe.wait_secret(timeout=120))
    run.check("ESO resynced (kubernetes auth from the snapshot): the Kubernetes Secret "
              "matches the restored Vault value", True)
    run.check("every Vault Pod unsealed with the ORIGINAL keys (vault-init.json unchanged)",
              _file_digest(init_file) == init_digest
              and all(pods.sealed(p) is False for p in pods.names))


def eso_outage(platform: PodsEnvironment, run: DrillRun, hold: float = 5.0) -> None:
    probe = Probe(platform)
    probe.setup()
    faults = platform.faults(probe.kube)
    dep = platform.config.faults["eso_deployment"]
    name, ns = dep["name"], dep["namespace"]
    scale: Any = probe.kube.apps.read_namespaced_deployment_scale(name, ns)
    replicas = int(scale.spec.replicas)
    before = probe.managed_secrets()
    run.setup(f"probe synced; {len(before)} ESO-managed Secrets inventoried")

    def eso_pods() -> list[Any]:
        selector = probe.kube.apps.read_namespaced_deployment(name, ns).spec.selector
        labels = ",".join(f"{k}={v}" for k, v in (selector.match_labels or {}).items())
        return list(probe.kube.core.list_namespaced_pod(ns, label_selector=labels).items)

    try:
        faults.scale_eso(0)
        run.fault(f"kubectl scale deployment/{name} --replicas=0 ({replicas} controller "
                  "Pod(s))")
        t0 = time.monotonic()
        eventually(lambda: not eso_pods(), timeout=120, interval=0.3, error=HarnessError,
                   description="every ESO controller Pod gone")
        run.info(f"every ESO controller Pod gone after {time.monotonic() - t0:.1f}s")
        write_during_outage(probe, run, before, hold)
        if "prometheus" in platform.components:
            prom = platform.prometheus()
            eventually(lambda: not prom.query('up{job="external-secrets"} == 1'),
                       timeout=60, interval=1, error=HarnessError,
                       description="Prometheus sees no ESO target up")
            run.check('Prometheus sees no ESO target up (up{job="external-secrets"} == 1 '
                      "is empty: the endpoints are gone)", True)
    finally:
        faults.undo_all()
    run.recovery(f"kubectl scale deployment/{name} --replicas={replicas}")
    _eso_back(platform, probe, run, eso_pods, replicas)
    caught_up_after_outage(probe, run, before)


def _eso_back(platform: PodsEnvironment, probe: Probe, run: DrillRun,
              eso_pods: Callable[[], list[Any]], replicas: int) -> None:
    """After the scale-up: the Deployment's Pods Ready, a leader when the controller runs
    with leader election (its Lease held by one of the new Pods), and the ExternalSecret
    controller reconciling again (counted on the new Pods' fresh /metrics, through the
    metrics Service)."""
    t0 = time.monotonic()
    eventually(lambda: sum(_ready(p) and p.metadata.deletion_timestamp is None
                           for p in eso_pods()) >= replicas, timeout=180, interval=0.5,
               error=HarnessError, description=f"{replicas} ESO controller Pod(s) Ready")
    run.measure("ready_after_scale_up", time.monotonic() - t0)
    pods = eso_pods()
    elects = any("--enable-leader-election=true" in (c.args or [])
                 for p in pods for c in p.spec.containers)
    if elects:
        ns = platform.config.faults["eso_deployment"]["namespace"]

        def leader() -> str | None:
            lease = probe.kube.coordination.read_namespaced_lease(ESO_LEASE, ns)
            holder = (lease.spec.holder_identity or "") if lease.spec else ""
            return next((p.metadata.name for p in eso_pods()
                         if holder.startswith(f"{p.metadata.name}_")), None)

        held = eventually(leader, timeout=90, error=HarnessError,
                          description="a new ESO Pod holds the Lease")
        run.measure("leader_after_restart", time.monotonic() - t0)
        run.info(f"{held} leads (Lease {ESO_LEASE})")
    else:
        run.info(f"ESO runs {replicas} replica(s) without leader election: no Lease to "
                 "wait for")

    count = wait_eso_reconciling(probe, 90, "the new ESO Pods reconcile ExternalSecrets")
    run.measure("syncing_after_restart", time.monotonic() - t0)
    run.check(f"the new ESO Pod(s) are Ready and syncing ({count:.0f} ExternalSecret "
              "reconcile(s) since they started)", True)
