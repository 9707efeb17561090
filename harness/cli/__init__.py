"""`harness` command line: the root group, its options and error handling; the commands
live in one module per group (environment, apply, rules, toolchain, gitops, backend,
drill, bench, vault_values) and each is a thin call into the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.markup import escape

from harness.cli import apply as apply_cmds
from harness.cli import backend as backend_cmds
from harness.cli import bench as bench_cmds
from harness.cli import drill as drill_cmds
from harness.cli import environment as environment_cmds
from harness.cli import gitops as gitops_cmds
from harness.cli import images as images_cmds
from harness.cli import rules as rules_cmds
from harness.cli import toolchain as toolchain_cmds
from harness.cli import vault_values as vault_values_cmds
from harness.cli.common import (
    ROOT_OPTIONS,
    ROOT_OPTIONS_KEY,
    SETTINGS_KEY,
    accept_root_options,
    err,
)
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.settings import Settings


def fail(exc: Exception) -> NoReturn:
    """One redacted line on stderr and exit status 2: a person acts on the message, a
    traceback would bury it (and could show a secret). The message is text, not markup:
    a bracket from the input (`[5m]`, `'[/]'`) is printed as written."""
    err.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", highlight=False)
    sys.exit(2)


class HarnessGroup(click.Group):
    """Turns HarnessError into one readable line and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            fail(exc)


@click.group(cls=HarnessGroup)
@click.option("--state-dir", type=click.Path(path_type=Path), envvar="HERACLES_STATE_DIR",
              help=ROOT_OPTIONS[0][2])
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="HERACLES_CACHE_DIR",
              help=ROOT_OPTIONS[1][2])
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, cache_dir: Path | None) -> None:
    """heracles-harness: the GitOps secrets platform from real binaries on 127.0.0.1."""
    # The CLI reports a lost connection itself, in one line: urllib3's "Retrying ..."
    # warnings would only be noise above it.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    root = {"state_dir": state_dir, "cache_dir": cache_dir}

    def make() -> Settings:
        return Settings().with_(**root)

    ctx.obj = {SETTINGS_KEY: make, ROOT_OPTIONS_KEY: root}


main.add_command(environment_cmds.up)
main.add_command(environment_cmds.down)
main.add_command(environment_cmds.status)
main.add_command(environment_cmds.env)
main.add_command(apply_cmds.apply)
main.add_command(apply_cmds.crds)
main.add_command(rules_cmds.rules)
main.add_command(toolchain_cmds.toolchain)
main.add_command(images_cmds.images)
main.add_command(gitops_cmds.gitops)
main.add_command(gitops_cmds.git_group)
main.add_command(backend_cmds.backend)
main.add_command(vault_values_cmds.vault_values_check)
main.add_command(drill_cmds.drill)
main.add_command(bench_cmds.bench)
accept_root_options(main)

__all__ = ["main"]

if __name__ == "__main__":
    main()
