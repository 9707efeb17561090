"""Lazy re-exports for the public modules (`harness`, `harness.testing`): a name is
imported from its module on first use, so loading the pytest plugin stays cheap."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str,
                 public: dict[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """A module-level `__getattr__`: name -> "module" (same name there) or
    ("module", "name there")."""

    def __getattr__(name: str) -> Any:
        target = public.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = target if isinstance(target, tuple) else (target, name)
        return getattr(import_module(module), attr)

    return __getattr__
