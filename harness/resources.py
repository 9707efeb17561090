"""The package's own data (the sample platform, Vault policies and seed, the spec's
rules, the shipped suites) found through importlib.resources, so it is the same in a
checkout, an editable install and a wheel in someone else's virtualenv."""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

_KEEP = ExitStack()
atexit.register(_KEEP.close)


@cache
def package_path(name: str) -> Path:
    """A directory or file shipped in the `harness` package, as a real path (extracted
    once per process if the package is zipped: tools such as kubectl need paths)."""
    return Path(_KEEP.enter_context(as_file(files("harness").joinpath(name))))
