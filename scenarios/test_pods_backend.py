"""The `pods` backend (issue 15, in progress): the platform's charts as real Pods on the
local control plane's real node, installed by the kind backend's own plan. The portable
secret-delivery suite runs on it unchanged: the spec's ClusterSecretStore points at
`http://vault.vault.svc.cluster.local:8200` as written, Vault is the chart's 3 raft Pods
initialised and unsealed through `kubectl exec`."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from .helpers import run_suite

pytestmark = [pytest.mark.scenario, pytest.mark.slow]


def test_the_secret_delivery_suite_passes_on_real_pods(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the pods backend's node needs root")
    # A short state dir: the kubelet's sockets live under it (107-byte limit)
    state = Path(tempfile.mkdtemp(prefix="hp-", dir="/tmp"))
    try:
        run, suite, tail = run_suite(
            ["--harness-backend", "pods", "--harness-state-dir", str(state),
             "scenarios/test_secret_sync.py"], tmp_path / "junit.xml", timeout=1800)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert run.returncode == 0, tail
    assert int(suite.get("tests", 0)) >= 5
    assert int(suite.get("skipped", 0)) == 0, tail
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail
