"""Backup and restore on the staging profile, through the drills (which also write the
reports): raft snapshot -> disaster -> fresh cluster -> restore -> original keys; etcd
snapshot -> wipe -> restore; scheduled snapshots with retention (the prod component)."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness import eventually
from harness.backends.local.environment import PROFILE_COMPONENTS, LocalEnvironment
from harness.drills import run_drill
from harness.runtime.redact import REDACTOR

pytestmark = pytest.mark.slow

REPORTS = ("report.md", "report.json", "report.html", "timeline.png")


def assert_reports(directory, vault) -> dict:
    for name in REPORTS:
        assert (directory / name).stat().st_size > 0, name
    assert (directory / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    init = vault.init_data()
    secrets_ = [init["root_token"], *init["keys"], *init["keys_base64"],
                *(v for v in REDACTOR.values() if len(v) >= 8)]
    for name in ("report.md", "report.json", "report.html"):
        text = (directory / name).read_text()
        leaked = [s for s in secrets_ if s in text]
        assert not leaked, f"{name} holds {len(leaked)} secret value(s)"
    return dict(json.loads((directory / "report.json").read_text()))


def test_vault_restore_from_raft_snapshot_with_the_original_keys(staging, tmp_path):
    vault = staging.component("vault")
    keys_before = vault.unseal_keys()
    result = run_drill("vault-restore", staging, tmp_path)
    assert result.verdict == "PASS", result.reasons
    report = assert_reports(tmp_path, vault)
    assert report["verdict"] == "PASS"
    assert 0 < report["rto_seconds"] <= 30
    assert report["rpo"]["lost"] == 6  # exactly the writes made after the snapshot
    assert report["rpo"]["unexpected_loss"] == 0
    assert vault.unseal_keys() == keys_before  # the original keys unseal the restore
    assert {n: vault.sealed(n) for n in vault.node_names} == dict.fromkeys(
        vault.node_names, False)


def test_cluster_state_restore_from_an_etcd_snapshot(staging, tmp_path):
    result = run_drill("cluster-state-restore", staging, tmp_path)
    assert result.verdict == "PASS", result.reasons
    report = assert_reports(tmp_path, staging.component("vault"))
    assert report["rpo"] == {"lost": 1, "unit": "object(s)",
                             "window_seconds": report["rpo"]["window_seconds"],
                             "unexpected_loss": 0}


def test_a_corrupt_etcd_snapshot_is_refused_before_anything_stops(staging, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\0" * 4096)
    pids = {p: staging.process(p).pid for p in ("etcd", "kube-apiserver")}
    with pytest.raises(Exception, match="etcdutl snapshot"):
        staging.restore_cluster_state(bad)
    assert {p: staging.process(p).pid for p in pids} == pids
    assert all(staging.process(p).ready() for p in pids)


def test_prod_schedules_snapshots_with_retention(staging):
    assert "backup" in PROFILE_COMPONENTS["prod"]
    plat = LocalEnvironment(staging.settings.with_(backup_interval=1.0, backup_keep=2))
    plat.up([*staging.record.components, "backup"], mode="session")
    backup = plat.component("backup")
    log = plat.state.log("backup")
    try:
        eventually(lambda: log.read_text().count("vault-raft: saved") >= 4, timeout=60,
                   description="four scheduled rounds")
        for kind in ("vault-raft", "etcd"):
            # retention: the newest two (a round may be between its write and its prune)
            eventually(lambda k=kind: len(backup.snapshots(k)) == 2, timeout=10,
                       description=f"{kind}: two snapshots kept")
        assert "pruned 1" in log.read_text()
        newest = backup.snapshots("etcd")[-1]
        status = subprocess.run([str(plat.toolchain.binary("etcd", "etcdutl")), "snapshot",
                                 "status", str(newest), "-w", "json"],
                                capture_output=True, text=True, check=True)
        assert json.loads(status.stdout)["totalKey"] > 0
        raft = backup.snapshots("vault-raft")[-1]
        assert raft.stat().st_mode & 0o077 == 0  # 0600: it holds the encrypted data
        assert raft.read_bytes()[:2] == b"\x1f\x8b"  # a gzip'd raft snapshot archive
        prom = plat.component("prometheus")
        eventually(lambda: prom.query("heracles_backup_snapshots == 2") or None, timeout=60,
                   description="Prometheus scrapes the backup metrics")
        token = backup.token_file.read_text().strip()
        assert token not in log.read_text()
    finally:
        plat.process("backup").stop()


def test_the_runbooks_restore_through_harness_env_reaches_the_leader(staging, tmp_path):
    """`eval "$(harness env)"; vault operator raft snapshot save/restore` as the runbook
    types it: the address `harness env` exports is the `vault-active` Service, so the
    restore lands on the leader and really restores (through the round-robin Service a
    standby took it, answered 0 and restored nothing)."""
    vault = staging.component("vault")
    exports = staging.env_exports()
    assert exports.count("_ADDR=") == 1 and "export VAULT_ADDR=" in exports
    assert "unset BAO_ADDR" in exports

    def runbook(*args: str) -> str:
        done = subprocess.run(["bash", "-c", exports + '\nbao "$@"', "runbook", *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    # Values no ordinary word: every value written is a secret to the redactor, which
    # masks it in whatever this process writes afterwards (reports included).
    vault.kv_put("runbook/restore", value="before-snap-3f1")
    snap = tmp_path / "runbook.snap"
    runbook("operator", "raft", "snapshot", "save", str(snap))
    vault.kv_put("runbook/restore", value="after-snap-3f1")
    for _attempt in range(2):  # twice: the second must not leave raft without a leader
        runbook("operator", "raft", "snapshot", "restore", str(snap))
        eventually(lambda: vault.kv_get("runbook/restore") == {"value": "before-snap-3f1"},
                   timeout=60, description="the snapshot's value is back")
        assert vault.active_node() is not None
    assert {n: vault.sealed(n) for n in vault.node_names} == dict.fromkeys(
        vault.node_names, False)
    status = staging.status()["components"]["vault"]
    roles = sorted(n["role"] for n in status["nodes"].values())
    assert roles == ["active", "standby", "standby"]
    assert status["active_service"].startswith("https://127.0.0.1:")
