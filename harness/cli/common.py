"""What every command module shares: the two consoles, this invocation's settings, the
events printer, the `--json` printer, and the `--only`/`--components` names.

Progress and diagnostics go to stderr (`err`) so that stdout stays what scripts read:
`eval "$(harness up)"`, `--json` output, tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem
from rich.console import Console
from rich.markup import escape

from harness.runtime.redact import redact, redact_doc
from harness.settings import Settings, parse_components

if TYPE_CHECKING:
    from harness.backends.install.environment import ChartsEnvironment

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
        ctx.meta[f"heracles.{param.name}"] = value  # for completion: no obj exists then
        root = ctx.find_root().obj
        if root is not None:
            root[ROOT_OPTIONS_KEY][param.name.removeprefix("sub_")] = value


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


def print_error(message: str) -> None:
    """One red `error:` line on stderr, redacted. The message is text, not markup: a
    bracket from the input (`[5m]`, `'[/]'`) is printed as written."""
    err.print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False)


def emit_json(doc: Any) -> None:
    """A command's `--json` report on stdout (progress stays on stderr), redacted as its
    text report would be. Paths and other objects are written as their str()."""
    click.echo(json.dumps(redact_doc(json.loads(json.dumps(doc, default=str))), indent=2))


class NameList(click.ParamType):
    """Comma-separated names from a known set (`--only a,b --only c`): each value is
    checked when it is parsed, so a typo is named with the valid names before anything
    runs, and shell completion offers the names. The set is read lazily (`names`): only
    a command given the option, or a completion, pays for importing where it lives."""

    name = "names"

    def __init__(self, kind: str, names: Callable[[], Iterable[str]]) -> None:
        self.kind = kind
        self._names = names

    def names(self) -> list[str]:
        return list(self._names())

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "NAME[,NAME...]"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):  # already converted (a default, a second pass)
            return value
        given = parse_components(str(value))
        known = self.names()
        unknown = [n for n in given if n not in known]
        if unknown:
            self.fail(f"unknown {self.kind}(s): {', '.join(unknown)}; "
                      f"known: {', '.join(known)}", param, ctx)
        return given

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem]:
        """The names that start with what is typed after the last comma, each offered as
        the whole word (`kube,va` -> `kube,vault`); names already given are left out."""
        head, comma, last = incomplete.rpartition(",")
        given = set(parse_components(head))
        return [CompletionItem(f"{head}{comma}{n}") for n in self.names()
                if n.startswith(last) and n not in given]


def _component_names() -> list[str]:
    from harness.backends.local.profiles import COMPONENTS

    return list(COMPONENTS)


def _image_names() -> list[str]:
    from harness.images.recipes import RECIPES

    return list(RECIPES)


def _toolchain_names() -> list[str]:
    from harness.toolchain.lock import load_lock

    return list(load_lock().components)


COMPONENT_NAMES = NameList("component", _component_names)
"""The local backend's components (`harness up --components`)."""
IMAGE_NAMES = NameList("image", _image_names)
"""The image recipes (`harness images build --only`)."""
TOOLCHAIN_NAMES = NameList("toolchain component", _toolchain_names)
"""The toolchain lock's entries (`harness toolchain install|status --only`)."""


def components_option(values: Iterable[Sequence[str] | str]) -> list[str] | None:
    """Repeated and/or comma-separated names (`--only a,b --only c`; each value a string,
    or the names a NameList already split), None when none are given: the library then
    takes its default (the whole profile, every component)."""
    names = [n for v in values
             for n in (parse_components(v) if isinstance(v, str) else v)]
    return names or None


def charts_env_class(backend: str) -> type[ChartsEnvironment]:
    """The environment class of a chart backend."""
    if backend == "kind":
        from harness.backends.kind.environment import KindEnvironment

        return KindEnvironment
    from harness.backends.pods.environment import PodsEnvironment

    return PodsEnvironment
