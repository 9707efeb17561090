"""The client's view a drill judges by: a namespace with an ExternalSecret fed by a
store of its own (https + the harness CA on HA Vault, as the spec wants TLS), a set of
Vault keys whose values are compared by digest (never printed), and reads/writes
through the Vault Service as a workload does."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol

from kubernetes import client

from harness.clients.eso import ExternalSecretsClient
from harness.errors import HarnessError
from harness.wait import WaitTimeout, consistently, eventually

if TYPE_CHECKING:
    from harness.clients.kube import KubeClient
    from harness.drills.model import DrillRun

NAMESPACE = "heracles-drill"
STORE = "heracles-drill"
PREFIX = "heracles-drill"


def fresh_value() -> str:
    """A random value: never an ordinary word (the redactor masks every value)."""
    return "drl-" + secrets.token_hex(12)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


class ProbeVault(Protocol):
    """What the probe needs of Vault on any backend: the local component (the Service in
    front of its nodes) or the pods backend's RemoteVault (the `vault-active` Service)."""

    @property
    def address(self) -> str: ...

    @property
    def tls(self) -> bool: ...

    def ca_bundle(self) -> bytes | None: ...

    def client(self, token: str | None = None, url: str | None = None) -> Any: ...

    def write_policy(self, name: str, hcl: str) -> None: ...

    def write_kubernetes_role(self, role: str, service_account: str, namespace: str,
                              policies: list[str], ttl: str = "1h",
                              mount: str = "kubernetes") -> None: ...

    def kv_put(self, path: str, /, mount_point: str = "secret", **values: str) -> None: ...

    def kv_get(self, path: str, mount_point: str = "secret") -> dict[str, str] | None: ...

    def kv_delete_tree(self, prefix: str, mount_point: str = "secret") -> None: ...


class ProbePlatform(Protocol):
    """What the probe needs of an environment (LocalEnvironment, PodsEnvironment)."""

    @property
    def vault(self) -> ProbeVault: ...

    def kube_client(self) -> KubeClient: ...

    def service_map(self) -> dict[str, str]: ...

    @property
    def eso_metrics_addresses(self) -> list[str]: ...


class Probe:
    def __init__(self, platform: ProbePlatform) -> None:
        self.platform = platform
        self.vault = platform.vault
        self.kube = platform.kube_client()
        self.eso = ExternalSecretsClient(platform, self.kube)
        self.written: dict[str, str] = {}  # key -> digest of the last value written

    # ---- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Namespace, store, probe ExternalSecret synced (idempotent)."""
        try:
            self.kube.core.create_namespace(client.V1Namespace(
                metadata=client.V1ObjectMeta(name=NAMESPACE)))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        # Its own least-privilege policy and role, bound to ESO's ServiceAccount: the
        # customer's policy (fixtures) only grants the spec's three paths.
        self.vault.write_policy(STORE, f'path "secret/data/{PREFIX}/*" {{\n'
                                       '  capabilities = ["read"]\n}\n')
        self.vault.write_kubernetes_role(STORE, "external-secrets", "external-secrets",
                                         [STORE])
        provider: dict[str, Any] = {
            "server": f"{'https' if self.vault.tls else 'http'}://vault.vault.svc.cluster.local:8200",
            "path": "secret", "version": "v2",
            "auth": {"kubernetes": {"mountPath": "kubernetes", "role": STORE,
                                    "serviceAccountRef": {"name": "external-secrets",
                                                          "namespace": "external-secrets"}}}}
        if self.vault.tls and (ca := self.vault.ca_bundle()) is not None:
            provider["caBundle"] = base64.b64encode(ca).decode()
        self.eso.apply_object({"apiVersion": "external-secrets.io/v1beta1",
                               "kind": "ClusterSecretStore", "metadata": {"name": STORE},
                               "spec": {"provider": {"vault": provider}}}, None)
        self.write("probe")
        self.eso.apply_object({
            "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": "probe"},
            "spec": {"refreshInterval": "1h",
                     "secretStoreRef": {"name": STORE, "kind": "ClusterSecretStore"},
                     "target": {"name": "probe"},
                     "data": [{"secretKey": "value", "remoteRef": {
                         "key": f"{PREFIX}/probe", "property": "value"}}]}}, NAMESPACE)
        self.wait_secret(timeout=90)

    # ---- Vault, as a client sees it -----------------------------------------------------
    def write(self, key: str) -> str:
        value = fresh_value()
        self.vault.kv_put(f"{PREFIX}/{key}", value=value)
        self.written[key] = digest(value)
        return value

    def read_digest(self, key: str) -> str | None:
        data = self.vault.kv_get(f"{PREFIX}/{key}")
        return digest(data["value"]) if data and "value" in data else None

    def service_answers(self) -> bool:
        """A read of the probe through the Service (not the active node) succeeds."""
        try:
            kv = self.vault.client(url=self.vault.address).secrets.kv.v2
            kv.read_secret_version(path=f"{PREFIX}/probe", mount_point="secret",
                                   raise_on_deleted_version=True)
            return True
        except Exception:  # noqa: BLE001 - any failure is "not (yet) serving"
            return False

    def wait_service(self, timeout: float) -> float:
        t0 = time.monotonic()
        eventually(self.service_answers, timeout=timeout, interval=0.1, error=HarnessError,
                   description="the Vault Service serves reads")
        return time.monotonic() - t0

    # ---- Kubernetes, as the application sees it ------------------------------------------
    def secret_digest(self) -> str | None:
        value = self.eso.secret_value(NAMESPACE, "probe", "value")
        return digest(value) if value is not None else None

    def synced_version(self) -> str | None:
        """status.syncedResourceVersion: the metadata (annotations included) ESO last
        synced the probe ExternalSecret with; None before its first sync."""
        status = self.eso.get(NAMESPACE, "probe").get("status") or {}
        return status.get("syncedResourceVersion") or None

    def wait_secret(self, timeout: float = 60, force: bool = True) -> float:
        """Until the Kubernetes Secret holds the probe's current Vault value — and, when
        force-synced, until ESO has synced the force-sync request itself. A request still
        pending when the value already matched (the first sync came first) would be acted
        on later: after a restart that makes ESO re-read Vault, and a drill that then
        judges "a restarted ESO keeps the fresh Secret" would see a change it did not
        cause. A never-synced ExternalSecret needs no request: its first sync reads Vault."""
        t0 = time.monotonic()
        before = self.synced_version()
        forced = force and before is not None
        if forced:
            self.eso.force_sync(NAMESPACE, "probe")

        def arrived() -> bool:
            version = self.synced_version()
            if (self.secret_digest() == self.written["probe"] and version is not None
                    and not (forced and version == before)):
                return True
            cond = self.eso.condition(NAMESPACE, "probe") or {}
            raise AssertionError(f"ExternalSecret {NAMESPACE}/probe: "
                                 f"{cond.get('reason')}: {cond.get('message')}")

        eventually(arrived, timeout=timeout, interval=0.1, error=HarnessError,
                   description="the probe Secret holds the Vault value")
        return time.monotonic() - t0

    def managed_secrets(self) -> dict[str, str]:
        """Every Secret ESO manages in the cluster: name -> digest of its data."""
        out = {}
        for s in self.kube.core.list_secret_for_all_namespaces(
                label_selector="reconcile.external-secrets.io/managed=true").items:
            blob = repr(sorted((s.data or {}).items()))
            meta = s.metadata
            assert meta is not None
            out[f"{meta.namespace}/{meta.name}"] = digest(blob)
        return out


def probe_with_keys(platform: ProbePlatform, run: DrillRun,
                    count: int = 10) -> tuple[Probe, list[str]]:
    """The client's view, synced, plus `count` Vault keys whose digests are known."""
    probe = Probe(platform)
    probe.setup()
    keys = [f"k{i:02d}" for i in range(count)]
    for k in keys:
        probe.write(k)
    run.setup(f"probe ExternalSecret synced; {len(keys)} keys written")
    return probe, keys


def wait_eso_reconciling(probe: Probe, timeout: float, description: str) -> float:
    """Until ESO's ExternalSecret controller has reconciled again (its fresh /metrics
    count, over every outcome): a restarted ESO that works, not just one that runs.
    Returns how many reconciles it counts."""
    def reconciled() -> float | None:
        done = sum(probe.eso.metric("controller_runtime_reconcile_total",
                                    controller="externalsecret", result=result)
                   for result in ("success", "requeue", "requeue_after"))
        return done or None

    count: float = eventually(reconciled, timeout=timeout, error=HarnessError,
                              description=description)
    return count


def write_during_outage(probe: Probe, run: DrillRun, before: dict[str, str],
                        hold: float) -> None:
    """A new value written to Vault while ESO is away, and every managed Secret checked
    to keep its last value for `hold` seconds."""
    probe.write("probe")
    run.info("a new value written to Vault during the outage")
    try:
        consistently(lambda: probe.managed_secrets() == before, duration=hold, interval=0.5,
                     description="every managed Secret keeps its last value")
        stale = True
    except WaitTimeout:
        stale = False
    run.check(f"for {hold:.0f}s every managed Secret keeps its last value", stale)


def delivered_after_failover(probe: Probe, run: DrillRun, keys: list[str],
                             written: bool = False) -> None:
    """After a leader change: a value written now (or just now, `written`) reaches the
    Kubernetes Secret, and every key written before the fault is intact (the RPO of a
    failover: nothing lost)."""
    if not written:
        probe.write("probe")
    run.measure("eso_sync_after_failover", probe.wait_secret(timeout=60))
    run.check("a value written after failover reached the Kubernetes Secret", True)
    lost = [k for k in keys if probe.read_digest(k) != probe.written[k]]
    run.result.rpo = {"lost": len(lost), "unit": "write(s)", "unexpected_loss": len(lost)}
    run.check(f"all {len(keys)} keys written before the fault are intact", not lost)


def caught_up_after_outage(probe: Probe, run: DrillRun, before: dict[str, str]) -> None:
    """ESO back: the change made during the outage waits for refreshInterval (found on
    the local backend: a restarted ESO does not re-read Vault for a fresh Secret), the
    runbook's force-sync brings it at once, and no managed Secret was lost (the RPO)."""
    unchanged = probe.secret_digest() != probe.written["probe"]
    run.check("without force-sync the change waits for refreshInterval (ESO keeps "
              "the fresh Secret)", unchanged)
    took = probe.wait_secret(timeout=90, force=True)
    run.restored("after force-sync the new value reached the Kubernetes Secret")
    run.measure("sync_after_force_sync", took)
    after = probe.managed_secrets()
    lost = [k for k in before if k not in after]
    run.result.rpo = {"lost": len(lost), "unit": "Secret(s)", "unexpected_loss": len(lost)}
    run.check("every managed Secret is still there", not lost)
