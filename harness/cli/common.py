"""What every command module shares: the two consoles, this invocation's settings, the
events printer, and the `--only`/`--components` parsing.

Progress and diagnostics go to stderr (`err`) so that stdout stays what scripts read:
`eval "$(harness up)"`, `--json` output, tables.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from rich.console import Console

from harness.settings import Settings, parse_components

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

SETTINGS_KEY = "settings"
"""Key in the root context's obj of a `() -> Settings` factory: lazy, so a bad
HERACLES_* variable fails only the commands that need settings."""


def settings_from(ctx: click.Context, **overrides: object) -> Settings:
    """This invocation's settings (root options, then HERACLES_* variables, then
    defaults) with the command's own options on top (None = not given)."""
    factory: Callable[[], Settings] = ctx.find_root().obj[SETTINGS_KEY]
    return factory().with_(**overrides)


def show_event(message: str) -> None:
    """One progress line of a long operation (start, stop, install), indented on
    stderr: the `events`/`log`/`progress` callback every command passes the library."""
    err.print(f"  {message}", highlight=False)


def components_option(values: tuple[str, ...]) -> list[str] | None:
    """Repeated and/or comma-separated names (`--only a,b --only c`), None when none are
    given: the library then takes its default (the whole profile, every component)."""
    names = [n for v in values for n in parse_components(v)]
    return names or None
