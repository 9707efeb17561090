"""Backends: where the platform under test runs. The scenario suites are written once
against the `Environment` interface (base.py) and the fixtures built on it; a backend
decides what stands behind them.

- local    : the real binaries as processes on 127.0.0.1 (local/).
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

from harness.backends.base import (
    BACKENDS,
    CAPABILITIES,
    LOCAL_CAPABILITIES,
    Environment,
    Faults,
    missing_reason,
)

__all__ = ["BACKENDS", "CAPABILITIES", "LOCAL_CAPABILITIES", "Environment", "Faults",
           "missing_reason"]
