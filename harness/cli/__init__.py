"""`harness` command line: the root group, its options and error handling; the commands
live in one module per group (environment, apply, rules, toolchain, gitops, backend,
drill, bench, vault_values) and each is a thin call into the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from harness.cli import apply as apply_cmds
from harness.cli import backend as backend_cmds
from harness.cli import bench as bench_cmds
from harness.cli import drill as drill_cmds
from harness.cli import environment as environment_cmds
from harness.cli import gitops as gitops_cmds
from harness.cli import rules as rules_cmds
from harness.cli import toolchain as toolchain_cmds
from harness.cli import vault_values as vault_values_cmds
from harness.cli.common import SETTINGS_KEY, err
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.settings import Settings


def fail(exc: Exception) -> NoReturn:
    """One redacted line on stderr and exit status 2: a person acts on the message, a
    traceback would bury it (and could show a secret)."""
    err.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False)
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
              help="Environment state directory "
                   "(default: $XDG_STATE_HOME/heracles-harness/default).")
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="HERACLES_CACHE_DIR",
              help="Toolchain cache (default: $XDG_CACHE_HOME/heracles-harness).")
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, cache_dir: Path | None) -> None:
    """heracles-harness: the GitOps secrets platform from real binaries on 127.0.0.1."""

    def make() -> Settings:
        return Settings().with_(state_dir=state_dir, cache_dir=cache_dir)

    ctx.obj = {SETTINGS_KEY: make}


main.add_command(environment_cmds.up)
main.add_command(environment_cmds.down)
main.add_command(environment_cmds.status)
main.add_command(environment_cmds.env)
main.add_command(apply_cmds.apply)
main.add_command(apply_cmds.crds)
main.add_command(rules_cmds.rules)
main.add_command(toolchain_cmds.toolchain)
main.add_command(gitops_cmds.gitops)
main.add_command(gitops_cmds.git_group)
main.add_command(backend_cmds.backend)
main.add_command(vault_values_cmds.vault_values_check)
main.add_command(drill_cmds.drill)
main.add_command(bench_cmds.bench)

__all__ = ["main"]

if __name__ == "__main__":
    main()
