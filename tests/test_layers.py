"""The package's layers (docs/architecture.md): every import points down or sideways, never
up, and scenarios use the public surface only. Read from the source with `ast`, so a new
import that breaks the architecture fails here, naming the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top to bottom. A module may import from its own layer or any layer below.
LAYERS: list[tuple[str, ...]] = [
    ("cli", "bench"),
    ("testing", "drills", "gitops"),
    ("backends",),
    ("faults",),
    ("clients",),
    ("daemons", "vault_config", "rules", "db"),
    ("images",),
    ("runtime", "toolchain", "settings", "wait", "errors", "progress", "lazy", "resources"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """`harness.clients.kube` -> "clients"; the package root itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "harness" else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "harness":
                found += [(node.lineno, f"harness.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, mod) for line, mod in found if mod.startswith("harness.")]


def _modules() -> list[Path]:
    return sorted(p for p in (ROOT / "harness").rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer() -> None:
    parts = {p.relative_to(ROOT / "harness").parts[0].removesuffix(".py") for p in _modules()}
    assert parts - {"__init__"} <= set(RANK), f"no layer for {sorted(parts - set(RANK))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    own = _part("harness." + ".".join(path.relative_to(ROOT / "harness").with_suffix("").parts))
    if own is None or own == "__init__":
        return
    upward = [f"{path.relative_to(ROOT)}:{line} imports {mod}"
              for line, mod in _imports(path)
              if (target := _part(mod)) in RANK and RANK[target] < RANK[own]]
    assert not upward, "an import points up a layer:\n" + "\n".join(upward)


def test_scenarios_import_nothing_private() -> None:
    private = [f"{p.relative_to(ROOT)}:{node.lineno} imports {node.module}.{a.name}"
               for p in sorted((ROOT / "scenarios").rglob("*.py"))
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness")
               for a in node.names
               if a.name.startswith("_") or any(s.startswith("_") for s in
                                                 (node.module or "").split("."))]
    assert not private, "\n".join(private)
