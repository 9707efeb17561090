"""How this repository's suite is split over pytest-xdist workers (conftest.py)."""

from __future__ import annotations

from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[1]


def test_the_real_node_group_is_exactly_the_modules_marked_real_node() -> None:
    marked = {str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("test_*.py")
              if "pytest.mark.real_node" in p.read_text()}
    assert marked == conftest.REAL_NODE_FILES


def test_files_are_groups_except_the_real_node_and_staging_groups() -> None:
    group = conftest.xdist_group
    assert group("tests/test_cli.py::test_version") == "tests/test_cli.py"
    assert group("scenarios/test_pods_backend.py::test_x[a::b]") == "real_node"
    assert group("scenarios/staging/test_failover.py::t") == \
        group("scenarios/staging/test_vault_ha.py::t") == "scenarios/staging"
    assert group("scenarios/staging/test_backup_restore.py::t") == \
        "scenarios/staging/test_backup_restore.py"
