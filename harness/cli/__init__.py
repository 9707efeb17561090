"""`harness` command line: the root group, its options and error handling; the commands
live in one module per group (environment, apply, rules, toolchain, gitops, backend,
drill, bench, vault_values) and each is a thin call into the library."""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
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
from harness.cli import runbook as runbook_cmds
from harness.cli import toolchain as toolchain_cmds
from harness.cli import vault_values as vault_values_cmds
from harness.cli.common import (
    ROOT_OPTIONS,
    ROOT_OPTIONS_KEY,
    SETTINGS_KEY,
    accept_root_options,
    err,
    print_error,
)
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.settings import Settings

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

EPILOG = """Exit status:

\b
  0  success
  1  a check failed: a drill FAIL, a dead rule, a failing test, images or toolchain
     entries missing, `status` with nothing running or not ready
  2  bad input or a harness error: one `error:` line says what to fix
  3  internal error (a bug): one line names the log file holding the traceback

Shell completion: eval "$(_HARNESS_COMPLETE=bash_source harness)" (zsh_source,
fish_source); see docs/cli.md."""

PASS_THROUGH = (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort)
"""Click's own ways out (usage errors: exit 2, `ctx.exit`, abort): click reports them."""


def fail(exc: Exception) -> NoReturn:
    """One redacted line on stderr and exit status 2: a person acts on the message, a
    traceback would bury it (and could show a secret)."""
    print_error(str(exc))
    sys.exit(EXIT_BAD_INPUT)


def internal_log_dir() -> Path:
    """Where internal-error tracebacks go: from the environment alone, not from Settings,
    so a bug in reading settings (or a bad HERACLES_* variable) is still logged."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "heracles-harness" / "logs"


def _write_log(text: str) -> Path | None:
    """The traceback in a new 0600 file under internal_log_dir(), or the temporary
    directory when that cannot be written; None when neither can."""
    name = f"internal-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{os.getpid()}.log"
    for directory in (internal_log_dir(), Path(tempfile.gettempdir()) / "heracles-harness"):
        path = directory / name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError:
            continue
        return path
    return None


def internal_error(exc: Exception) -> NoReturn:
    """A bug, not bad input: exit status 3 (distinct from 2, so CI tells them apart) and
    one line naming the log file that holds the traceback (redacted, as everything the
    harness writes), which is what a bug report needs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("heracles-harness")
    except PackageNotFoundError:
        ours = "unknown"
    text = redact(f"heracles-harness {ours}\nargv: {sys.argv!r}\n\n"
                  + "".join(traceback.format_exception(exc)))
    path = _write_log(text)
    lines = str(exc).strip().splitlines()
    summary = redact(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
    where = f"the traceback is in {path}" if path else f"the traceback follows\n{text}"
    err.print(f"[bold red]internal error:[/] {escape(summary)} — this is a bug; "
              f"{escape(where)}", highlight=False)
    sys.exit(EXIT_INTERNAL)


class HarnessGroup(click.Group):
    """Turns HarnessError into one readable line and exit status 2, and any other
    exception (a bug) into one line, a logged traceback and exit status 3."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            fail(exc)
        except PASS_THROUGH:
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # stdout closed by `| head`: click handles it
                raise
            internal_error(exc)
        except Exception as exc:  # noqa: BLE001 - the last resort: every bug ends here
            internal_error(exc)


@click.group(cls=HarnessGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heracles-harness", prog_name="harness",
                      message="%(prog)s %(version)s")
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
main.add_command(runbook_cmds.logs)
main.add_command(runbook_cmds.restart)
main.add_command(runbook_cmds.eso_group)
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
