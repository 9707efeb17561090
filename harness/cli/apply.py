"""Putting things into the running cluster: `harness apply` (manifests or a platform
repository) and `harness crds install`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.cli.common import err, settings_from, show_event
from harness.errors import HarnessError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--platform-repo", type=click.Path(path_type=Path), default=None,
              help="A GitOps tree (plain YAML and kustomize dirs): discover, seed Vault, "
                   "create namespaces, apply.")
@click.option("--seed", type=click.Path(path_type=Path, exists=True), default=None,
              help="Vault seed file (`vault kv put secret/K k=v` lines) for --platform-repo "
                   "(default: placeholder values for every remoteRef).")
@click.option("--namespace", default="default", show_default=True,
              help="Namespace for --platform-repo objects that name none.")
@click.option("--gitops-env", default=None,
              help="Which environment's root Applications to apply when the repo has one "
                   "per environment (default: the profile).")
@click.option("--wait", "wait_seconds", type=float, default=0.0,
              help="Wait up to this many seconds for every Application to reach Synced "
                   "(exit 1 naming those that do not).")
@click.pass_context
def apply(ctx: click.Context, paths: tuple[Path, ...], platform_repo: Path | None,
          seed: Path | None, namespace: str, gitops_env: str | None,
          wait_seconds: float) -> None:
    """Validate every document, rewrite in-cluster addresses, then server-side apply."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.gitops.deploy import apply_manifests, wait_synced

    if bool(paths) == bool(platform_repo):
        raise HarnessError("give manifest PATHS or --platform-repo PATH (one of them)")
    environment = LocalEnvironment(settings_from(ctx))
    # The input is read and checked before the environment is asked for anything: a bad
    # file is named as such whether or not an environment runs.
    if platform_repo is None:
        from harness.clients import manifests

        docs = manifests.load(list(paths))
        if not docs:
            raise manifests.ManifestError(f"{', '.join(map(str, paths))}: no Kubernetes "
                                          "objects: nothing to apply")
        manifests.check_objects(docs)
        platform = environment.attach()
        count = apply_manifests(platform, list(paths), log=show_event)
        err.print(f"[green]applied[/] {count} object(s)")
        return
    from harness.gitops.platform_repo import apply_repo, scan

    found = scan(platform_repo, str(environment.toolchain.binary("kubernetes", "kubectl")))
    platform = environment.attach()
    report = apply_repo(platform, platform_repo, namespace, seed, env=gitops_env,
                        log=show_event, found=found)
    click.echo(json.dumps(report, indent=2))
    placeholders = report["vault_seed"]["placeholders"]
    if placeholders:
        err.print(f"[yellow]PLACEHOLDER values[/] seeded for {len(placeholders)} Vault "
                  f"key(s): {', '.join(placeholders)}")
    if wait_seconds and report["applications"]["expected"]:
        failed = wait_synced(platform, report["applications"], wait_seconds, log=show_event)
        if failed:
            err.print("[bold red]not Synced:[/]\n  " + "\n  ".join(failed), highlight=False)
            sys.exit(1)


@click.group()
def crds() -> None:
    """CRDs the platform expects before Argo CD syncs (installed from the toolchain)."""


@crds.command("install")
@click.argument("name", type=click.Choice(["prometheus-operator"]))
@click.pass_context
def crds_install(ctx: click.Context, name: str) -> None:
    """Install a CRD set: prometheus-operator = ServiceMonitor, PrometheusRule, PodMonitor."""
    from harness.backends.local.environment import LocalEnvironment

    platform = LocalEnvironment(settings_from(ctx)).attach()
    names = platform.install_crds(name, events=show_event)
    err.print(f"[green]installed[/] {len(names)} CRD(s): {', '.join(names)}")
