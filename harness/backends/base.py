"""The Environment: everything a suite, drill or CLI command may ask of any backend.

A backend decides what stands behind it — processes on 127.0.0.1 (`local`), a kind
cluster (`kind`), the team's own cluster (`existing`) — and the suites are written once
against this interface. What a backend cannot do is a missing capability: a scenario
that needs it is skipped with the reason, never silently passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.clients.alerts import ReceivedAlerts
    from harness.clients.kube import KubeClient
    from harness.clients.prometheus import PrometheusAPI
    from harness.clients.vault import VaultAdmin
    from harness.settings import Settings

BACKENDS = ("local", "kind", "existing", "pods")

CAPABILITIES: dict[str, str] = {
    "local-processes": "drives the local backend's processes directly (kill -9, SIGSTOP, "
                       "restart on the same data dir, ports, the state directory)",
    "vault-audit-file": "reads Vault's audit log file on this machine",
    "eso-metrics": "reads the ESO controller's /metrics (give eso.metrics in the config)",
    "prometheus": "queries Prometheus (give prometheus: in the config)",
    "alert-receiver": "needs the harness's own Alertmanager webhook receiver",
    "network-faults": "injects network faults with Toxiproxy in front of Vault",
    "pod-faults": "turns faults into Kubernetes operations (delete a Vault pod, scale "
                  "ESO; give faults: in the config)",
    "gitops": "needs Argo CD and the harness's Git server",
    "in-cluster": "needs the platform as Pods installed from its charts (pods, kind), "
                  "where the runbook's kubectl exec/logs/rollout act on them",
}

LOCAL_CAPABILITIES = frozenset(CAPABILITIES) - {"pod-faults", "in-cluster"}


def missing_reason(backend: str, needed: set[str], have: frozenset[str]) -> str | None:
    """Why a scenario needing `needed` cannot run on a backend that has `have`."""
    lacking = sorted(needed - have)
    if not lacking:
        return None
    return f"the {backend} backend cannot run this: " + "; ".join(
        f"it {CAPABILITIES.get(c, c)}" for c in lacking)


@runtime_checkable
class Faults(Protocol):
    """Fault primitives of a backend; whatever a test leaves on is undone at teardown."""

    def undo_all(self) -> None: ...


@runtime_checkable
class Environment(Protocol):
    """A running platform, whichever backend stands behind it."""

    backend: str
    settings: Settings

    @property
    def capabilities(self) -> frozenset[str]:
        """What this backend can do (keys of CAPABILITIES)."""
        ...

    # ---- lifecycle -------------------------------------------------------------------
    def up(self) -> Environment:
        """Bring the platform up (or connect to it); idempotent."""
        ...

    def attach(self) -> Environment:
        """Bind to a platform that already runs, starting nothing."""
        ...

    def down(self) -> None:
        """Stop what this environment started (never what it did not create)."""
        ...

    def status(self) -> dict[str, Any]:
        """A JSON-ready summary: state, components, addresses."""
        ...

    def diagnostics(self, log_lines: int = 20) -> str:
        """What a failed test attaches: health and log tails (redacted by the caller)."""
        ...

    # ---- Kubernetes ------------------------------------------------------------------
    @property
    def kubeconfig(self) -> str: ...

    @property
    def kubectl(self) -> str: ...

    def kube_client(self) -> KubeClient:
        """Typed Kubernetes APIs plus the runbook's kubectl, bound to this cluster."""
        ...

    def service_map(self) -> dict[str, str]:
        """In-cluster address -> the address a client of this environment reaches."""
        ...

    def after_apply(self, docs: list[Any]) -> None:
        """Hook after objects were applied (local: PrometheusRules become rules)."""
        ...

    # ---- the platform's services -----------------------------------------------------
    @property
    def vault(self) -> VaultAdmin:
        """Vault administered with a root (or the configured) token."""
        ...

    def prometheus(self) -> PrometheusAPI:
        """Prometheus' API; raises HarnessError where the backend has none."""
        ...

    def alerts(self) -> ReceivedAlerts:
        """Notifications Alertmanager delivers to the harness's receiver, from now on."""
        ...

    @property
    def eso_metrics_addresses(self) -> list[str]:
        """The ESO controllers' /metrics URLs (empty when unknown)."""
        ...

    def git_url(self) -> str:
        """The platform repository Argo CD pulls; raises where the harness serves none."""
        ...

    def faults(self, kube: KubeClient) -> Faults:
        """This backend's fault primitives."""
        ...
