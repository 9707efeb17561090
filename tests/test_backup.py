"""Scheduled snapshots' retention and naming (the scheduler process itself runs in
scenarios/staging/test_backup_restore.py)."""

import json
import time

import pytest

from harness.daemons.backup_scheduler import existing, prune, snapshot_name, write_index


def make(directory, kind, when):
    path = directory / snapshot_name(kind, when)
    path.write_bytes(b"x" * 10)
    return path


def test_names_sort_by_time_and_retention_keeps_the_newest(tmp_path):
    t = time.time()
    made = [make(tmp_path, "etcd", t + i * 0.5) for i in range(5)]
    other = make(tmp_path, "vault-raft", t)
    (tmp_path / ".etcd-x.db.partial").write_bytes(b"p")  # an unfinished one is not counted
    assert existing(tmp_path, "etcd") == made
    removed = prune(tmp_path, "etcd", keep=2)
    assert removed == made[:3]
    assert existing(tmp_path, "etcd") == made[3:]
    assert existing(tmp_path, "vault-raft") == [other]  # other kinds are untouched
    write_index(tmp_path)
    index = json.loads((tmp_path / "snapshots.json").read_text())
    assert sorted(e["file"] for e in index) == sorted(p.name for p in (*made[3:], other))


def test_retention_must_keep_one(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        prune(tmp_path, "etcd", keep=0)
