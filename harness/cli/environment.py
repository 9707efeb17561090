"""The local environment's lifecycle: `harness up`, `down`, `status`, `env`.

Library imports are inside the commands: `--help` and input errors must not pay for
importing the Kubernetes client and every component.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from harness.cli.common import (
    COMPONENT_NAMES,
    charts_env_class,
    components_option,
    err,
    out,
    settings_from,
    show_event,
)
from harness.errors import HarnessError
from harness.settings import PROFILES

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.settings import Settings


BACKEND_OPTION = click.option(
    "--backend", type=click.Choice(["local", "pods", "kind"]), default="local",
    show_default=True,
    help="local: the platform as processes on 127.0.0.1; pods: installed from its Helm "
         "charts as real Pods on the local control plane's real node (needs root); kind: "
         "the same charts on a kind cluster (your Docker, or a private daemon as root).")
CHART_BACKENDS = ("pods", "kind")


@click.command()
@BACKEND_OPTION
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Environment profile (default: dev, or $HERACLES_PROFILE).")
@click.option("--components", "components", multiple=True, type=COMPONENT_NAMES,
              help="Comma-separated components to run (default: the whole profile).")
@click.option("--time-scale", type=click.FloatRange(min=1.0), default=None,
              help="Divide alert for:, rule windows and scrape/evaluation intervals by N "
                   "(default 1, or $HERACLES_TIME_SCALE).")
@click.option("--vault-values", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Your Vault Helm values: staging/prod run their server "
              "config (server.ha.raft.config / ha.config / standalone.config, replicas).")
@click.option("--recreate", is_flag=True,
              help="Start from nothing: a stopped environment's data in this state "
                   "directory (etcd, Vault, Git) is removed first.")
@click.option("--kind-image", type=click.Choice(["auto", "local", "official"]), default=None,
              help="kind's node image: local (built here), official (kindest/node, "
                   "pulled), auto (local when built) [default: auto].")
@click.pass_context
def up(ctx: click.Context, backend: str, profile: str | None,
       components: tuple[tuple[str, ...], ...],
       time_scale: float | None, vault_values: Path | None, recreate: bool,
       kind_image: str | None) -> None:
    """Bring the environment up, or attach to it if it is already running."""
    from harness.backends.local.environment import bring_up, profile_chosen

    settings = settings_from(ctx, profile=profile, time_scale=time_scale,
                             vault_values=vault_values.resolve() if vault_values else None,
                             kind_image=kind_image)
    if kind_image and backend != "kind":
        raise click.UsageError("--kind-image is a kind-backend option")
    if backend in CHART_BACKENDS:
        if components or recreate:
            raise click.UsageError("--components and --recreate are local-backend options")
        charts_up(backend, settings)
        return
    platform = bring_up(settings, components_option(components),
                        keep_running_profile=not profile_chosen(profile), recreate=recreate,
                        events=show_event)
    err.print(f"[green]up[/] in {platform.timings['total']:.1f}s — state: {settings.state_dir}")
    _print_values_report(platform)
    from harness.cli.runbook import local_exports

    click.echo(local_exports(platform))


def charts_up(backend: str, settings: Settings) -> None:
    """A chart backend, detached: its record in <state>/<backend> (pods: the local
    control plane and node under <state>/local); a second `up` reports the running one."""
    import time

    from harness.backends.install.session import start_detached

    cls = charts_env_class(backend)
    try:
        running = cls.from_record(settings)
    except HarnessError:
        running = None
    if running is not None and running.running():
        err.print(f"[green]already up[/] ({backend} backend, {settings.state_dir}); "
                  f"`harness down --backend {backend}` first to start again")
        click.echo(running.env_exports())
        return
    t0 = time.monotonic()
    started = start_detached(cls(settings), progress=show_event)
    err.print(f"[green]up[/] ({backend} backend, profile {settings.profile}) in "
              f"{time.monotonic() - t0:.1f}s — state: {settings.state_dir}; endpoints: "
              f"{started.config}")
    click.echo(started.env.env_exports())


def _charts_status(backend: str, settings: Settings, as_json: bool) -> None:
    """The platform's Pods, namespace by namespace: phase and readiness. Exit 1 when one
    is not Running and Ready (a Job's Pod may be Succeeded), or when nothing runs (no
    record in the state directory, or its run is over): no cluster to ask then."""
    from harness.cli.common import emit_json, print_error

    recorded = settings.state_dir / backend / f"{backend}.json"
    env = charts_env_class(backend).from_record(settings) if recorded.is_file() else None
    if env is None or not env.running():
        if as_json:
            emit_json({"backend": backend, "profile": env.profile if env else None,
                       "running": False, "pods": []})
        print_error(f"no running {backend} environment in {settings.state_dir}; run "
                    f"`harness up --backend {backend}` (or check --state-dir)")
        sys.exit(1)
    items: list[Any] = env.kube_client().core.list_pod_for_all_namespaces().items
    pods = [{"namespace": p.metadata.namespace, "pod": p.metadata.name,
             "phase": p.status.phase, "node": p.spec.node_name,
             "ready": any(c.type == "Ready" and c.status == "True"
                          for c in p.status.conditions or [])}
            for p in items if not (p.spec.node_name or "").startswith("kwok")]
    healthy = all(p["ready"] or p["phase"] == "Succeeded" for p in pods)
    if as_json:
        click.echo(json.dumps({"backend": backend, "profile": env.profile,
                               "running": env.running(), "pods": pods}, indent=2))
    else:
        table = Table("namespace", "pod", "phase", "ready")
        for p in pods:
            table.add_row(p["namespace"], p["pod"], p["phase"],
                          "[green]yes[/]" if p["ready"] else "[red]no[/]")
        out.print(table)
    if not healthy:
        sys.exit(1)


def _print_values_report(platform: LocalEnvironment) -> None:
    """Say how the user's Vault values were used: ignored by the dev profile, or the
    mode/replicas/storage they produced and what had to be adapted."""
    vault = platform.vault if "vault" in platform.components else None
    if platform.settings.vault_values and vault is not None and not vault.ha:
        err.print(f"Vault values {platform.settings.vault_values} not used: the "
                  f"{platform.settings.profile} profile runs the dev server (staging/prod "
                  "run your server config)")
    vv = vault.values if vault is not None else None
    if vv is not None:
        err.print(f"Vault from {vv.source}: {vv.mode}, {vv.replicas} replica(s), "
                  f"storage {vv.storage}")
        for f in vv.findings:
            err.print(f"  {f.line()}", highlight=False, markup=False)


@click.command()
@BACKEND_OPTION
@click.option("--purge", is_flag=True, help="Also delete the state directory (data, logs).")
@click.pass_context
def down(ctx: click.Context, backend: str, purge: bool) -> None:
    """Stop every process of the environment (SIGTERM, then SIGKILL after a grace)."""
    from harness.backends.local.environment import LocalEnvironment

    settings = settings_from(ctx)
    if backend in CHART_BACKENDS:
        charts_env_class(backend).from_record(settings).down()
        err.print(f"{backend} backend in {settings.state_dir} stopped")
        if purge:
            import shutil

            shutil.rmtree(settings.state_dir, ignore_errors=True)
        return
    LocalEnvironment(settings).down(purge=purge, events=show_event)


@click.command()
@BACKEND_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, backend: str, as_json: bool) -> None:
    """Each component: pid, address, ready. Exit 1 when nothing runs (no environment in
    the state directory, or a stopped one) or a component is not ready, with --json too
    (after printing the document, `"status": "absent"` when there is none)."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.cli.common import emit_json, print_error

    if backend in CHART_BACKENDS:
        _charts_status(backend, settings_from(ctx), as_json)
        return

    st = LocalEnvironment(settings_from(ctx)).status()
    if st["status"] == "absent":
        # A typo'd --state-dir must not look like a healthy answer; scripts reading
        # --json still get a document saying what is there (nothing). Exit 1, not 2:
        # the question was fine, the answer is "nothing runs".
        if as_json:
            emit_json(st)
        print_error(f"no environment in {st['state_dir']}; run `harness up` "
                    "(or check --state-dir)")
        sys.exit(1)
    running = st["status"] == "up" and all(c["ready"] for c in st["components"].values())
    if as_json:
        emit_json(st)
        if not running:
            sys.exit(1)
        return
    out.print(f"state dir: {st['state_dir']}  status: {st['status']}  "
              f"profile: {st.get('profile')}", highlight=False, markup=False)
    table = Table()
    for col in ("component", "process", "pid", "ready", "address"):
        table.add_column(col)
    for name, comp in st["components"].items():
        for pname, p in comp["processes"].items():
            table.add_row(name, pname, str(p["pid"] or "-"),
                          "[green]yes[/]" if p["ready"] else "[red]no[/]", comp["address"])
    out.print(table)
    if not running:
        sys.exit(1)


@click.command()
@BACKEND_OPTION
@click.pass_context
def env(ctx: click.Context, backend: str) -> None:
    """Print `export ...` lines for a shell: eval "$(harness env)". KUBECONFIG, VAULT_*,
    the endpoints; kubectl, `vault` and `argocd` on PATH (local: <state>/bin)."""
    from harness.backends.local.environment import LocalEnvironment

    if backend in CHART_BACKENDS:
        click.echo(charts_env_class(backend).from_record(settings_from(ctx)).env_exports())
        return
    from harness.cli.runbook import local_exports

    click.echo(local_exports(LocalEnvironment(settings_from(ctx))))

