"""The drills listed for staging that no other suite runs, on the shared staging
environment (issue 13: a drill listed for a profile passes on that profile): ESO with
leader election — the restarted replicas wait for one to take the Lease, then it syncs —
and the loss of the active Vault node. Both leave the environment healthy."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.drills import run_drill
from harness.testing import LocalEnvironment

pytestmark = pytest.mark.slow


def test_eso_outage_with_leader_election(staging: LocalEnvironment, tmp_path: Path) -> None:
    assert sum("--enable-leader-election=true" in p.spec.argv
               for p in staging.eso_operator.processes()) == 2
    result = run_drill("eso-outage", staging, tmp_path)
    assert result.verdict == "PASS", result.reasons
    assert {"leader_after_restart", "syncing_after_restart"} <= set(result.measurements)
    assert any(e.kind == "info" and e.message.endswith("leads (a killed leader's Lease "
                                                       "must expire first)")
               for e in result.events)


def test_vault_leader_loss(staging: LocalEnvironment, tmp_path: Path) -> None:
    result = run_drill("vault-leader-loss", staging, tmp_path)
    assert result.verdict == "PASS", result.reasons
    assert result.rpo["unexpected_loss"] == 0
