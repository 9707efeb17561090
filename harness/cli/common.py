"""What every command module shares: the two consoles, this invocation's settings, the
events printer, and the `--only`/`--components` parsing.

Progress and diagnostics go to stderr (`err`) so that stdout stays what scripts read:
`eval "$(harness up)"`, `--json` output, tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from harness.settings import Settings, parse_components

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

SETTINGS_KEY = "settings"
"""Key in the root context's obj of a `() -> Settings` factory: lazy, so a bad
HERACLES_* variable fails only the commands that need settings."""
ROOT_OPTIONS_KEY = "root_options"
"""Key in the root context's obj of the root options' values ({"state_dir": ...,
"cache_dir": ...}), which the factory reads when it is called: a command's own
`--state-dir` (given after its name) is stored there before the command runs."""
ROOT_OPTIONS = (("--state-dir", "state_dir", "Environment state directory "
                 "(default: $XDG_STATE_HOME/heracles-harness/default)."),
                ("--cache-dir", "cache_dir", "Toolchain cache "
                 "(default: $XDG_CACHE_HOME/heracles-harness)."))


def _store_root_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A root option given after the subcommand wins over one given before it (the
    later on the command line, as with any repeated option)."""
    if value is not None and param.name:
        ctx.find_root().obj[ROOT_OPTIONS_KEY][param.name.removeprefix("sub_")] = value


def accept_root_options(command: click.Command) -> None:
    """Let `harness status --state-dir X` mean `harness --state-dir X status`: every
    leaf command gets the root options too (no environment variable of their own, so
    HERACLES_STATE_DIR never overrides a --state-dir given before the subcommand)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_root_options(sub)
        return
    have = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for flag, name, help_text in ROOT_OPTIONS:
        if flag not in have:
            command.params.append(click.Option(
                [flag, f"sub_{name}"], type=click.Path(path_type=Path), default=None,
                expose_value=False, callback=_store_root_option, help=help_text))


def settings_from(ctx: click.Context, **overrides: object) -> Settings:
    """This invocation's settings (root options, then HERACLES_* variables, then
    defaults) with the command's own options on top (None = not given)."""
    factory: Callable[[], Settings] = ctx.find_root().obj[SETTINGS_KEY]
    return factory().with_(**overrides)


def show_event(message: str) -> None:
    """One progress line of a long operation (start, stop, install), indented on
    stderr: the `events`/`log`/`progress` callback every command passes the library.
    Printed as text: names and addresses from the input may hold brackets."""
    err.print(f"  {message}", highlight=False, markup=False)


def components_option(values: tuple[str, ...]) -> list[str] | None:
    """Repeated and/or comma-separated names (`--only a,b --only c`), None when none are
    given: the library then takes its default (the whole profile, every component)."""
    names = [n for v in values for n in parse_components(v)]
    return names or None
