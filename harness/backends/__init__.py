"""Backends: where the platform under test runs. The scenario suites are written once
against the fixtures (`platform`, `kube`, `vault`, `eso`, `prometheus`, `faults`); a
backend decides what stands behind them.

- local    : the real binaries as processes on 127.0.0.1 (harness.platform.Platform).
- existing : any cluster the user already runs — a kubeconfig plus a small YAML file
             with the Vault, Prometheus and Alertmanager endpoints (existing.py).
- kind     : a kind cluster with the components installed from Helm charts pinned to the
             local toolchain's versions (kind.py).

A scenario that needs something a backend cannot do declares it
(`@pytest.mark.needs("vault-audit-file")`), and is skipped with the reason on backends
that lack it — never silently passed. Scenario modules that do not say they are
`portable` drive the local backend's processes directly and need "local-processes".
"""

from __future__ import annotations

BACKENDS = ("local", "kind", "existing")

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
}

LOCAL_CAPABILITIES = frozenset(CAPABILITIES) - {"pod-faults"}


def missing_reason(backend: str, needed: set[str], have: frozenset[str]) -> str | None:
    """Why a scenario needing `needed` cannot run on a backend that has `have`."""
    lacking = sorted(needed - have)
    if not lacking:
        return None
    return f"the {backend} backend cannot run this: " + "; ".join(
        f"it {CAPABILITIES.get(c, c)}" for c in lacking)
