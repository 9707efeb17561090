"""Putting things into the running cluster: `harness apply` (manifests or a platform
repository) and `harness crds install`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli.common import emit_json, err, settings_from, show_event
from harness.errors import HarnessError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--platform-repo", type=click.Path(path_type=Path), default=None,
              help="A GitOps tree: read as Argo CD reads it (each Application's source "
                   "rendered on its own; a tree without Applications: its plain YAML and "
                   "kustomize dirs), then discover, seed Vault, create namespaces, apply.")
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
@click.option("--report", "report_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None,
              help="--platform-repo: write the repository report here (report.md, "
                   "report.json, report.html): per Application its render, Sync/Health "
                   "and findings; per ExternalSecret synced or why not; per rule ok/dead/"
                   "not simulated; the Vault configuration's findings.")
@click.option("--dry-run", is_flag=True,
              help="--platform-repo: render and judge offline, no environment needed "
                   "(exit 1 when Argo CD could not render an Application or the repository "
                   "itself is broken).")
@click.pass_context
def apply(ctx: click.Context, paths: tuple[Path, ...], platform_repo: Path | None,
          seed: Path | None, namespace: str, gitops_env: str | None,
          wait_seconds: float, report_dir: Path | None, dry_run: bool) -> None:
    """Validate every document, rewrite in-cluster addresses, then server-side apply."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.gitops.deploy import apply_manifests, wait_synced

    if bool(paths) == bool(platform_repo):
        raise HarnessError("give manifest PATHS or --platform-repo PATH (one of them)")
    if (dry_run or report_dir) and platform_repo is None:
        raise HarnessError("--dry-run and --report are for --platform-repo PATH")
    settings = settings_from(ctx)
    environment = LocalEnvironment(settings)
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
    from harness.gitops import repo_report
    from harness.gitops.platform_repo import apply_repo, scan

    found = scan(platform_repo, str(environment.toolchain.binary("kubernetes", "kubectl")),
                 toolchain=environment.toolchain)
    if dry_run:
        report = repo_report.build(found, gitops_env or settings.profile, settings.profile)
        _show_report(report, report_dir)
        emit_json(report)
        problems = repo_report.failed(report)
        if problems:
            err.print(f"[bold red]{len(problems)} error(s)[/] Argo CD (or kubectl) would "
                      "meet in this repository", highlight=False)
            sys.exit(1)
        return
    platform = environment.attach()
    env = gitops_env or platform.settings.profile
    applied = apply_repo(platform, platform_repo, namespace, seed, env=env,
                         log=show_event, found=found)
    emit_json(applied)
    placeholders = applied["vault_seed"]["placeholders"]
    if placeholders:
        err.print(f"[yellow]PLACEHOLDER values[/] seeded for {len(placeholders)} Vault "
                  f"key(s): {', '.join(placeholders)}")
    failed: list[str] = []
    if wait_seconds and applied["applications"]["expected"]:
        # What the offline render found Argo CD cannot render is not waited for.
        broken = {r.name: f.message for r in found.apps for f in r.findings
                  if f.level == "error" and r.status == "failed"}
        apps = applied["applications"]
        failed = [f"{n}: Argo CD cannot render it: {broken[n]}" for n in apps["expected"]
                  if n in broken]
        failed += wait_synced(platform, {**apps, "expected": [
            n for n in apps["expected"] if n not in broken]}, wait_seconds, log=show_event)
    if report_dir is not None:
        live = repo_report.collect_live(platform, found, env, applied,
                                        settle=max(wait_seconds, 30.0))
        _show_report(repo_report.build(found, env, platform.settings.profile, live, applied),
                     report_dir)
    if failed:
        err.print("[bold red]not Synced:[/]\n  " + "\n  ".join(failed), highlight=False)
        sys.exit(1)


def _show_report(report: dict[str, Any], directory: Path | None) -> None:
    """The report's summary on stderr; its files when a directory is given."""
    from harness.gitops import repo_report

    for line in repo_report.summary_lines(report):
        err.print(line, highlight=False, markup=False)
    if directory is not None:
        files = repo_report.write(report, directory)
        err.print(f"report: {', '.join(str(p) for p in files.values())}", highlight=False,
                  markup=False)


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
