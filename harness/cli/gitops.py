"""Argo CD and the platform repository: `harness gitops bootstrap`, `harness git url`,
`harness git clone`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from harness.cli.common import emit_json, err, out, settings_from
from harness.errors import HarnessError
from harness.runtime.redact import redact

if TYPE_CHECKING:
    from harness.backends.base import Environment


@click.group("git")
def git_group() -> None:
    """The platform repository on the harness's Git server (smart HTTP, 127.0.0.1)."""


def _git_server(ctx: click.Context) -> Any:
    """The Git server component of the running environment (refuses when none runs)."""
    from harness.backends.local.environment import LocalEnvironment

    return LocalEnvironment(settings_from(ctx)).attach().git


@git_group.command("url")
@click.pass_context
def git_url(ctx: click.Context) -> None:
    """Print the platform repository's URL (what Argo CD pulls)."""
    click.echo(_git_server(ctx).url())


@git_group.command("clone")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--branch", default="dev", show_default=True)
@click.pass_context
def git_clone(ctx: click.Context, directory: Path, branch: str) -> None:
    """Clone the platform repository to DIRECTORY: edit, commit, `git push` — Argo CD
    syncs the environment's branch (dev, staging, main)."""
    from harness.clients.git import Workspace

    if directory.exists() and any(directory.iterdir()):
        raise HarnessError(f"{directory} exists and is not empty")
    ws = Workspace(_git_server(ctx).url(), directory, branch)
    err.print(f"cloned {ws.url} ({branch}) into {directory}")


@click.group()
def gitops() -> None:
    """Argo CD and the platform repository."""


@gitops.command("bootstrap")
@click.option("--env", "env_name", type=click.Choice(["dev", "staging", "prod"]),
              default=None, help="Which argocd/<env>/app-of-apps.yaml (default: the profile).")
@click.option("--timeout", type=float, default=180.0, show_default=True)
@click.option("--backend", type=click.Choice(["local", "pods", "kind"]), default="local",
              show_default=True, help="The environment `harness up --backend` started.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {ok, app_of_apps, seconds, applications, error} on stdout; also "
                   "when an Application is not Synced/Healthy in time (ok false, exit 1).")
@click.pass_context
def gitops_bootstrap(ctx: click.Context, env_name: str | None, timeout: float,
                     backend: str, as_json: bool) -> None:
    """Apply the app-of-apps and wait until it and the Applications it owns are Synced
    and Healthy (exit 1 naming those that are not, with their errors; exit 2 at once
    when they need CRDs the cluster lacks, naming them and the fix)."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.gitops.deploy import NotSynced, bootstrap

    platform: Environment
    if backend in ("pods", "kind"):
        from harness.cli.common import charts_env_class

        platform = charts_env_class(backend).from_record(settings_from(ctx)).attach()
    else:
        platform = LocalEnvironment(settings_from(ctx)).attach()
    try:
        done = bootstrap(platform, env_name, timeout, log=err.print)
    except NotSynced as exc:
        if as_json:
            emit_json({"ok": False, "app_of_apps": None, "seconds": None,
                       "applications": {}, "error": str(exc)})
        err.print(f"[red]not every Application is Synced/Healthy:[/] {redact(str(exc))}",
                  highlight=False)
        sys.exit(1)
    if as_json:
        emit_json({"ok": True, "app_of_apps": str(done.app_of_apps), "seconds": done.seconds,
                   "applications": done.applications, "error": None})
    else:
        table = Table("Application", "sync", "health", "revision")
        for name, st in done.applications.items():
            table.add_row(name, st["sync"], st["health"], (st["revision"] or "")[:10])
        out.print(table)
    err.print(f"the app-of-apps and its {len(done.applications)} Application(s) Synced and "
              f"Healthy in {done.seconds:.1f}s")
