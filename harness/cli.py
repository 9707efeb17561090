"""`harness` command line: up/down/status/env, drill list/run, toolchain install/status,
bench."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Column, Table

from harness.errors import HarnessError
from harness.progress import Reporter
from harness.runtime.redact import redact
from harness.runtime.state import StateDir
from harness.settings import PROFILES, Settings, parse_components
from harness.toolchain import Toolchain

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def settings_from(ctx: click.Context, **overrides: object) -> Settings:
    base: Settings = ctx.obj["settings"]()
    return base.with_(**overrides)


def fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False)
    sys.exit(2)


class HarnessGroup(click.Group):
    """Turns HarnessError into one readable line and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            fail(exc)
        return None


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

    ctx.obj = {"settings": make}


def _components(values: tuple[str, ...]) -> tuple[str, ...] | None:
    names = tuple(n for v in values for n in parse_components(v))
    return names or None


@main.command()
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Environment profile (default: dev, or $HERACLES_PROFILE).")
@click.option("--components", "components", multiple=True,
              help="Comma-separated components to run (default: the whole profile).")
@click.option("--time-scale", type=click.FloatRange(min=1.0), default=None,
              help="Divide alert for:, rule windows and scrape/evaluation intervals by N "
                   "(default 1, or $HERACLES_TIME_SCALE).")
@click.option("--vault-values", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Your Vault Helm values: staging/prod run their server "
              "config (server.ha.raft.config / ha.config / standalone.config, replicas).")
@click.pass_context
def up(ctx: click.Context, profile: str | None, components: tuple[str, ...],
       time_scale: float | None, vault_values: Path | None) -> None:
    """Bring the environment up, or attach to it if it is already running."""
    from harness.platform import Platform

    settings = settings_from(ctx, profile=profile, time_scale=time_scale,
                             vault_values=vault_values.resolve() if vault_values else None)
    if profile is None and os.environ.get("HERACLES_PROFILE") is None:
        # No profile asked for: a running environment keeps the one it has.
        record = StateDir(settings.state_dir).load()
        if record and record.get("status") == "up" and record.get("profile") in PROFILES:
            settings = settings.with_(profile=record["profile"])
    platform = Platform(settings)
    platform.up(list(_components(components) or []) or None,
                events=lambda m: err.print(f"  {m}", highlight=False))
    err.print(f"[green]up[/] in {platform.timings['total']:.1f}s — state: {settings.state_dir}")
    _print_values_report(platform)
    click.echo(platform.env_exports())


def _print_values_report(platform: Any) -> None:
    vault = platform.components.get("vault")
    if platform.settings.vault_values and vault is not None and not vault.ha:
        err.print(f"Vault values {platform.settings.vault_values} not used: the "
                  f"{platform.settings.profile} profile runs the dev server (staging/prod "
                  "run your server config)")
    if vault is not None and getattr(vault, "values", None) is not None:
        vv = vault.values
        err.print(f"Vault from {vv.source}: {vv.mode}, {vv.replicas} replica(s), "
                  f"storage {vv.storage}")
        for f in vv.findings:
            err.print(f"  {f.line()}", highlight=False, markup=False)


@main.command()
@click.option("--purge", is_flag=True, help="Also delete the state directory (data, logs).")
@click.pass_context
def down(ctx: click.Context, purge: bool) -> None:
    """Stop every process of the environment (SIGTERM, then SIGKILL after a grace)."""
    from harness.platform import Platform

    Platform(settings_from(ctx)).down(purge=purge,
                                      events=lambda m: err.print(f"  {m}", highlight=False))


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Each component: pid, address, ready."""
    from harness.platform import Platform

    st = Platform(settings_from(ctx)).status()
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    out.print(f"state dir: {st['state_dir']}  status: {st['status']}  "
              f"profile: {st.get('profile')}", highlight=False)
    table = Table()
    for col in ("component", "process", "pid", "ready", "address"):
        table.add_column(col)
    for name, comp in st["components"].items():
        for pname, p in comp["processes"].items():
            table.add_row(name, pname, str(p["pid"] or "-"),
                          "[green]yes[/]" if p["ready"] else "[red]no[/]", comp["address"])
    out.print(table)
    if st["status"] == "up" and not all(c["ready"] for c in st["components"].values()):
        sys.exit(1)


@main.command()
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
    from kubernetes.dynamic import DynamicClient

    from harness import manifests
    from harness.platform import Platform

    if bool(paths) == bool(platform_repo):
        raise HarnessError("give manifest PATHS or --platform-repo PATH (one of them)")
    platform = Platform(settings_from(ctx)).attach()
    if platform_repo is not None:
        from harness.platform_repo import apply_repo

        report = apply_repo(platform, platform_repo, namespace, seed, env=gitops_env,
                            log=lambda m: err.print(f"  {m}", highlight=False))
        click.echo(json.dumps(report, indent=2))
        if report["vault_seed"]["placeholders"]:
            err.print(f"[yellow]PLACEHOLDER values[/] seeded for "
                      f"{len(report['vault_seed']['placeholders'])} Vault key(s): "
                      f"{', '.join(report['vault_seed']['placeholders'])}")
        if wait_seconds and report["applications"]["expected"]:
            _wait_synced(platform, report["applications"], wait_seconds)
        return
    dyn = DynamicClient(platform.kube.api_client())
    docs = manifests.apply_paths(list(paths), dyn, platform.service_map(),
                                 log=lambda m: err.print(f"  {m}", highlight=False))
    platform.after_apply(docs)
    err.print(f"[green]applied[/] {len(docs)} object(s)")


def _wait_synced(platform: Any, apps: dict[str, Any], timeout: float) -> None:
    """Every expected Application Synced, or exit 1 naming each one that is not."""
    from harness.gitops import Applications
    from harness.kubeclient import KubeClient

    argo = Applications(KubeClient(platform.kubeconfig, platform.kubectl))
    failed = []
    for name in apps["expected"]:
        if name in apps.get("unservable", {}):
            failed.append(f"{name}: {apps['unservable'][name]}")
            continue
        try:
            st = argo.wait(name, sync="Synced", health=None, timeout=timeout)
            err.print(f"  Application {name}: {st['sync']} / {st['health']}")
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        err.print("[bold red]not Synced:[/]\n  " + "\n  ".join(failed), highlight=False)
        sys.exit(1)


@main.group()
def crds() -> None:
    """CRDs the platform expects before Argo CD syncs (installed from the toolchain)."""


@crds.command("install")
@click.argument("name", type=click.Choice(["prometheus-operator"]))
@click.pass_context
def crds_install(ctx: click.Context, name: str) -> None:
    """Install a CRD set: prometheus-operator = ServiceMonitor, PrometheusRule, PodMonitor."""
    from harness.platform import Platform

    platform = Platform(settings_from(ctx.find_root())).attach()
    names = platform.install_crds(name, events=lambda m: err.print(f"  {m}", highlight=False))
    err.print(f"[green]installed[/] {len(names)} CRD(s): {', '.join(names)}")


@main.group()
def rules() -> None:
    """Alerting rules: check against live metrics, unit-test with promtool."""


def _rule_paths(ctx: click.Context, files: tuple[Path, ...]) -> list[Path]:
    if files:
        return list(files)
    return [settings_from(ctx.find_root()).fixtures_dir / "observability"]


@rules.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_check(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Every metric a rule references must exist in a scraped target; exit 1 on dead rules."""
    from harness.platform import Platform
    from harness.rules import check_rules, load_rules, scale_duration

    platform = Platform(settings_from(ctx.find_root())).attach()
    prom = platform.component("prometheus")
    live = prom.live_metric_names()  # type: ignore[attr-defined]
    verdicts = check_rules(load_rules(_rule_paths(ctx, files)), live)
    scale = platform.settings.time_scale
    if as_json:
        click.echo(json.dumps([{"group": v.rule.group, "rule": v.rule.name,
                                "source": v.rule.source, "status": v.status,
                                "missing": v.missing, "closest": v.closest}
                               for v in verdicts], indent=2))
    else:
        for v in verdicts:
            timing = ""
            if v.rule.for_:
                timing = f" [for {v.rule.for_}" + (
                    f", live x{scale:g}: {scale_duration(v.rule.for_, scale)}]"
                    if scale != 1 else "]")
            click.echo(v.line() + timing)
        counts = {s: sum(v.status == s for v in verdicts)
                  for s in ("ok", "dead", "not-simulated")}
        click.echo(f"{len(verdicts)} rule(s): {counts['ok']} ok, {counts['dead']} dead, "
                   f"{counts['not-simulated']} not simulated ({len(live)} live metric names)")
    if any(v.status == "dead" for v in verdicts):
        sys.exit(1)


@rules.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="Write JUnit XML here (its directory must exist).")
@click.pass_context
def rules_test(ctx: click.Context, files: tuple[Path, ...], junit: Path | None) -> None:
    """Generate promtool tests proving each alert's exact `for:` (real scale) and run them."""
    import tempfile

    from harness.rules import junit_xml, load_rules, run_promtool_tests

    settings = settings_from(ctx.find_root())
    promtool = str(Toolchain(settings.cache_dir).binary("prometheus", "promtool"))
    with tempfile.TemporaryDirectory(prefix="heracles-promtool-") as tmp:
        results = run_promtool_tests(load_rules(_rule_paths(ctx, files)), Path(tmp), promtool)
    for r in results:
        click.echo(f"{r.status.upper():8} {r.rule.group}/{r.rule.name}"
                   + (f": {r.detail}" if r.status != "passed" else ""))
    if junit:
        junit.write_text(junit_xml(results))
        click.echo(f"JUnit: {junit}")
    if any(r.status == "failed" for r in results):
        sys.exit(1)


@main.command()
@click.pass_context
def env(ctx: click.Context) -> None:
    """Print `export ...` lines (KUBECONFIG and endpoints) for a shell: eval "$(harness env)"."""
    from harness.platform import Platform

    click.echo(Platform(settings_from(ctx)).env_exports())


@main.group()
def toolchain() -> None:
    """Build/install and inspect the pinned binaries."""


@toolchain.command("install")
@click.option("--only", multiple=True, help="Component(s) to install (repeat or comma-separate).")
@click.option("--force", is_flag=True, help="Rebuild even when the cache entry is valid.")
@click.pass_context
def toolchain_install(ctx: click.Context, only: tuple[str, ...], force: bool) -> None:
    """Build or install every binary the local backend uses (cached by version)."""
    settings = settings_from(ctx.find_root())
    tc = Toolchain(settings.cache_dir)
    tc.install(list(_components(only) or []) or None, Reporter(err), force=force)


@toolchain.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--only", multiple=True)
@click.pass_context
def toolchain_status(ctx: click.Context, as_json: bool, only: tuple[str, ...]) -> None:
    """Each component: version, path, present/missing (hashes are verified)."""
    settings = settings_from(ctx.find_root())
    tc = Toolchain(settings.cache_dir)
    rows = tc.status(list(_components(only) or []) or None)
    if as_json:
        click.echo(json.dumps({"cache_dir": str(settings.cache_dir),
                               "components": [r.as_json() for r in rows]}, indent=2))
    else:
        table = Table(title=f"toolchain ({settings.cache_dir})")
        for col in ("component", "version", "source", "state", "paths / detail"):
            table.add_column(col)
        for r in rows:
            style = "green" if r.present else "red"
            where = ""
            if r.paths:
                dirs = sorted({str(Path(p).parent) for p in r.paths.values()})
                where = f"{', '.join(dirs)}: {' '.join(r.paths)}"
            table.add_row(r.name, r.version, r.source, f"[{style}]{r.state}[/]",
                          where or r.detail)
        out.print(table)
    if not all(r.present for r in rows):
        sys.exit(1)


@main.group("git")
def git_group() -> None:
    """The platform repository on the harness's Git server (smart HTTP, 127.0.0.1)."""


def _git_server(ctx: click.Context) -> Any:
    from harness.platform import Platform

    return Platform(settings_from(ctx)).attach().git


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
    from harness.gitops import Workspace

    if directory.exists() and any(directory.iterdir()):
        raise HarnessError(f"{directory} exists and is not empty")
    ws = Workspace(_git_server(ctx).url(), directory, branch)
    err.print(f"cloned {ws.url} ({branch}) into {directory}")


@main.group()
def gitops() -> None:
    """Argo CD and the platform repository."""


@gitops.command("bootstrap")
@click.option("--env", "env_name", type=click.Choice(["dev", "staging", "prod"]),
              default=None, help="Which argocd/<env>/app-of-apps.yaml (default: the profile).")
@click.option("--timeout", type=float, default=180.0, show_default=True)
@click.pass_context
def gitops_bootstrap(ctx: click.Context, env_name: str | None, timeout: float) -> None:
    """Apply the app-of-apps and wait until every Application is Synced and Healthy
    (exit 1 naming those that are not, with their errors)."""
    import time

    from harness.gitops import Applications
    from harness.kubeclient import KubeClient
    from harness.platform import Platform
    from harness.secrets_sync import ExternalSecrets
    from harness.wait import WaitTimeout

    platform = Platform(settings_from(ctx)).attach()
    env_name = env_name or platform.settings.profile
    app_of_apps = platform.settings.fixtures_dir / "gitops" / "argocd" / env_name / \
        "app-of-apps.yaml"
    kube = KubeClient(platform.kubeconfig,
                      str(platform.toolchain.binary("kubernetes", "kubectl")))
    ExternalSecrets(platform, kube).apply(app_of_apps)
    err.print(f"applied {app_of_apps}")
    apps = Applications(kube)
    t0 = time.monotonic()
    try:
        apps.wait("platform", timeout=timeout)
        names = [n for n in apps.names() if n != "platform"]
        apps.wait_all(names, timeout=max(1.0, timeout - (time.monotonic() - t0)))
    except WaitTimeout as exc:
        err.print(f"[red]not every Application is Synced/Healthy:[/] {redact(str(exc))}",
                  highlight=False)
        sys.exit(1)
    table = Table("Application", "sync", "health", "revision")
    for name in apps.names():
        st = apps.state(name)
        table.add_row(name, st["sync"], st["health"], (st["revision"] or "")[:10])
    out.print(table)
    err.print(f"every Application Synced and Healthy in {time.monotonic() - t0:.1f}s")


@main.command("vault-values")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", type=click.Choice(PROFILES), default="staging", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def vault_values_check(path: Path, profile: str, as_json: bool) -> None:
    """Judge a Vault Helm values file against a profile without starting anything: what
    runs as written, what is adapted to one machine, what it cannot deliver (exit 1)."""
    from harness.vault_values import load

    vv = load(path, profile)
    if as_json:
        click.echo(json.dumps(vv.report(), indent=2))
    else:
        out.print(f"{path}: {vv.mode}, {vv.replicas} replica(s), storage {vv.storage} "
                  f"— against the {profile} profile:")
        for f in vv.findings:
            out.print(f"  {f.line()}", highlight=False, markup=False)
    if any(f.level == "cannot" for f in vv.findings):
        sys.exit(1)


@main.group()
def backend() -> None:
    """Other backends: an existing cluster (endpoints file), kind (plan, render)."""


@backend.command("export-config")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def backend_export_config(ctx: click.Context, path: Path) -> None:
    """Write an existing-backend config for the running local environment (kubeconfig,
    Vault/Prometheus/Alertmanager/ESO-metrics endpoints, service map; the Vault token stays
    in its 0600 file)."""
    from harness.backends.existing import export_config
    from harness.platform import Platform

    export_config(Platform(settings_from(ctx)).attach(), path)
    err.print(f"wrote {path}; run the portable suites through it with: .venv/bin/pytest "
              f"--harness-backend existing --harness-existing-config {path} -m portable")


@backend.command("check")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def backend_check(ctx: click.Context, config: Path) -> None:
    """Connect to an existing cluster as the suites would, and say what can run there."""
    from harness.backends import CAPABILITIES
    from harness.backends.existing import ExistingConfig, ExistingPlatform

    plat = ExistingPlatform(ExistingConfig.load(config), settings_from(ctx)).up()
    out.print(f"existing backend {config}: cluster, ESO CRDs, Vault and token OK")
    for cap in CAPABILITIES:
        mark = "yes" if cap in plat.capabilities else "no "
        out.print(f"  {mark}  {cap}", highlight=False)


@backend.command("kind-plan")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write cluster.yaml, values/, rendered/ here (default: <state>/kind).")
@click.option("--vault-values", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Your Vault Helm values, merged into the Vault chart's.")
@click.pass_context
def backend_kind_plan(ctx: click.Context, out: Path | None, vault_values: Path | None) -> None:
    """Render and validate the kind backend offline (cluster config, chart values, helm
    lint + template) and print the plan of steps `kind-up` would run."""
    from harness.backends.kind import KindPlatform

    kind = KindPlatform(settings_from(ctx, vault_values=vault_values))
    rendered = kind.render(out)
    err.print(f"rendered into {rendered['dir']}: "
              + ", ".join(f"{k} {len(v)} objects" for k, v in rendered["rendered"].items()))
    err.print("images (must be in the local Docker: no registry is reachable):")
    for img in rendered["images"]:
        click.echo(f"  {img}")
    err.print("plan:")
    for i, step in enumerate(kind.plan(), 1):
        click.echo(f"{i:2}. {step.name}\n      {step.describe()}")


@backend.command("kind-up")
@click.pass_context
def backend_kind_up(ctx: click.Context) -> None:
    """Create the kind cluster and install the platform, then run the suites with
    `--harness-backend existing --harness-existing-config <state>/kind/existing.yaml`.
    Exits 2 with the exact reason when Docker or an image is missing."""
    from harness.backends.existing import write_config
    from harness.backends.kind import KindPlatform, KindUnavailable

    kind = KindPlatform(settings_from(ctx))
    try:
        kind.up(progress=lambda m: err.print(f"  {m}", highlight=False))
    except KindUnavailable as exc:
        raise HarnessError(f"the kind backend cannot run on this machine: {exc}") from None
    except BaseException:
        kind.down()  # nothing half-done: port-forwards stopped, the cluster deleted
        raise
    kind.registry.set_mode(kind.run_id, "detached")  # outlives this command
    path = write_config(kind.config, kind.dir / "existing.yaml")
    err.print(f"[green]kind cluster {kind.name} up[/]; endpoints: {path} (port-forwards run "
              "until `harness backend kind-down`)")


@backend.command("kind-down")
@click.pass_context
def backend_kind_down(ctx: click.Context) -> None:
    """Stop the port-forwards and delete the kind cluster `kind-up` created."""
    from harness.backends.kind import KindPlatform

    kind = KindPlatform.from_record(settings_from(ctx))
    kind.down()
    err.print(f"kind cluster {kind.name} deleted")


@main.group()
def drill() -> None:
    """DR drills: a fault, recovery as the runbook says, RTO/RPO, a verdict, reports."""


@drill.command("list")
def drill_list() -> None:
    from harness.drills import DRILLS

    table = Table("what happens", title="harness drills")
    table.columns.insert(0, Column("drill", no_wrap=True))
    table.columns.insert(1, Column("profiles", no_wrap=True))
    table.columns.insert(2, Column("RTO objective", no_wrap=True))
    for d in DRILLS.values():
        table.add_row(d.name, ", ".join(d.profiles), f"{d.objectives.rto_seconds:.0f} s",
                      d.description)
    out.print(table)


@drill.command("run")
@click.argument("name")
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Profile of the environment the drill starts when none is running "
                   "(default: the drill's first).")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), default=None,
              help="Directory for report.md/json/html + timeline.png "
                   "(default: ./drill-reports/NAME-<UTC time>).")
@click.option("--keep", is_flag=True,
              help="Keep the environment the drill started (default: torn down).")
@click.pass_context
def drill_run(ctx: click.Context, name: str, profile: str | None, report_dir: Path | None,
              keep: bool) -> None:
    """Run a drill against the running environment of --state-dir when its profile
    suits the drill; otherwise in a fresh environment of its own. Exit 1 on FAIL."""
    import time

    from harness import drills
    from harness.drills.model import Event
    from harness.drills.report import rpo_text
    from harness.platform import Platform

    spec = drills.get(name)
    if profile is not None and profile not in spec.profiles:
        raise HarnessError(f"drill {name!r} needs profile {' or '.join(spec.profiles)}")
    settings = settings_from(ctx)
    record = StateDir(settings.state_dir).load()
    running = record is not None and record.get("status") == "up"
    reuse = running and record is not None and record.get("profile") in spec.profiles and (
        profile is None or record.get("profile") == profile)
    if not reuse:
        settings = settings.with_(
            profile=profile or spec.profiles[0],
            state_dir=settings.state_dir.parent / "drills" / name)
    report_dir = report_dir or Path("drill-reports") / (
        f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    colors = {"fault": "red", "restored": "green", "recovery": "yellow", "error": "red"}

    def show(e: Event) -> None:
        mark = {True: " [green]ok[/]", False: " [red]FAILED[/]", None: ""}[e.ok]
        color = colors.get(e.kind, "cyan")
        err.print(f"  {e.at:7.2f}s [{color}]{e.kind:<9}[/] {redact(e.message)}{mark}",
                  highlight=False)

    platform = Platform(settings)
    if reuse:
        platform.attach()
        err.print(f"drill {name}: on the running {platform.settings.profile} environment "
                  f"in {settings.state_dir}")
    else:
        err.print(f"drill {name}: starting a {settings.profile} environment in "
                  f"{settings.state_dir}")
        platform.up(events=lambda m: err.print(f"  {m}", highlight=False))
    try:
        result = drills.run_drill(name, platform, report_dir, progress=show)
    finally:
        if not reuse and not keep:
            platform.down(purge=True)
    rto = f"{result.rto_seconds:.2f}s" if result.rto_seconds is not None else "n/a"
    color = "green" if result.verdict == "PASS" else "red"
    err.print(f"[{color}]{result.verdict}[/] RTO {rto} (objective "
              f"{result.objectives.rto_seconds:.0f}s), RPO {rpo_text(result)}")
    for reason in result.reasons:
        err.print(f"  [red]-[/] {redact(reason)}", highlight=False)
    err.print(f"reports: {report_dir}/report.md, report.json, report.html, timeline.png")
    sys.exit(0 if result.verdict == "PASS" else 1)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--profile", type=click.Choice(PROFILES), default="dev")
@click.pass_context
def bench(ctx: click.Context, as_json: bool, profile: str) -> None:
    """Measure start, attach, memory, and the envtest floor (etcd + apiserver alone)."""
    from harness.bench import run_bench

    settings = settings_from(ctx, profile=profile)
    report = run_bench(settings, log=lambda m: err.print(f"  {m}", highlight=False))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        from harness.bench import render

        out.print(render(report))


if __name__ == "__main__":
    main()
