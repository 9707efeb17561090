"""The `pods` backend in CI: the platform from its charts as real Pods on the local
control plane's real node, and the portable suites run on it unchanged, each profile in
a pytest of its own (`--harness-backend pods`):

- dev (one dev-mode Vault Pod): secret delivery through the spec's store verbatim
  (`http://vault.vault.svc.cluster.local:8200`), refresh timing and force-sync,
  rotation, failures and least privilege, the runbook, Argo CD's app-of-apps;
- staging (3 raft Pods with TLS, init 5/3 and unseal through `kubectl exec`): Vault Pod
  failover, ESO scaled away, a cordoned node, the runbook's raft snapshot save/restore,
  the spec's alerts through Prometheus and Alertmanager from their chart.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness.vault_config.seed import parse_seed

from .helpers import ROOT, run_suite

pytestmark = [pytest.mark.scenario, pytest.mark.slow]

SUITES = {
    "dev": (["scenarios/test_secret_sync.py", "scenarios/test_refresh_timing.py",
             "scenarios/test_rotation.py", "scenarios/test_secret_failures.py",
             "scenarios/test_runbook.py", "scenarios/test_gitops_in_cluster.py"], []),
    "staging": (["scenarios/test_pod_faults.py", "scenarios/test_runbook.py",
                 "scenarios/test_alerts_in_cluster.py"], ["--harness-time-scale", "60"]),
}
# What may skip, and why: on dev the audit-file test (it reads a file on this machine:
# no vault-audit-file capability) and the raft snapshot (a dev-mode Vault has no raft);
# on staging nothing.
ALLOWED_SKIPS = {"dev": 2, "staging": 0}


@pytest.mark.parametrize("profile", sorted(SUITES))
def test_the_portable_suites_pass_on_real_pods(profile: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the pods backend's node needs root")
    files, extra = SUITES[profile]
    # A short state dir: the kubelet's sockets live under it (107-byte limit)
    state = Path(tempfile.mkdtemp(prefix="hp-", dir="/tmp"))
    try:
        run, suite, tail = run_suite(
            ["--harness-backend", "pods", "--harness-profile", profile,
             "--harness-state-dir", str(state), *extra, *files],
            tmp_path / "junit.xml", timeout=2400)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert run.returncode == 0, tail
    # the seeded values never reach the output (diagnostics included: redacted)
    seeds = [v for _m, _p, values in parse_seed(ROOT / "fixtures" / "vault" / "seed.txt")
             for k, v in values.items() if "password" in k or "secret" in k]
    leaked = [v for v in seeds if v in run.stdout + run.stderr]
    assert not leaked, f"{len(leaked)} seeded value(s) printed by the suites"
    assert int(suite.get("tests", 0)) >= (25 if profile == "dev" else 12), tail
    assert int(suite.get("skipped", 0)) <= ALLOWED_SKIPS[profile], tail
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail
