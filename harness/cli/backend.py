"""Other backends than the local processes: an existing cluster (`export-config`,
`check`) and kind (`kind-plan`, `kind-up`, `kind-down`)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.common import emit_json, err, out, settings_from
from harness.errors import HarnessError


@click.group()
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
    from harness.backends.local.environment import LocalEnvironment

    export_config(LocalEnvironment(settings_from(ctx)).attach(), path)
    err.print(f"wrote {path}; run the portable suites through it with: .venv/bin/pytest "
              f"--harness-backend existing --harness-existing-config {path} -m portable")


@backend.command("check")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print {config, ok, error, capabilities, components} on stdout; also "
                   "when the connection fails (ok false, exit 2).")
@click.pass_context
def backend_check(ctx: click.Context, config: Path, as_json: bool) -> None:
    """Connect to an existing cluster as the suites would, and say what can run there."""
    from harness.backends import CAPABILITIES
    from harness.backends.existing import ExistingConfig, ExistingEnvironment

    plat = ExistingEnvironment(ExistingConfig.load(config), settings_from(ctx))
    try:
        plat.up()
    except HarnessError as exc:
        # A bad file is refused above, before any document; a platform that does not
        # answer is a finding a script reads too, then the same error line and exit.
        if as_json:
            emit_json({"config": str(config), "ok": False, "error": str(exc),
                       "capabilities": {c: c in plat.capabilities for c in CAPABILITIES},
                       "components": {}})
        raise
    if as_json:
        emit_json({"config": str(config), "ok": True, "error": None,
                   "capabilities": {c: c in plat.capabilities for c in CAPABILITIES},
                   "components": {n: c.address for n, c in plat.components.items()}})
        return
    out.print(f"existing backend {config}: cluster, ESO CRDs, Vault and token OK",
              markup=False)
    for cap in CAPABILITIES:
        mark = "yes" if cap in plat.capabilities else "no "
        out.print(f"  {mark}  {cap}", highlight=False)


KIND_IMAGE = click.option(
    "--kind-image", type=click.Choice(["auto", "local", "official"]), default=None,
    help="The node image: local (built here: harness images node-image), official "
         "(kindest/node, pulled), auto (local when built) [default: auto].")


@backend.command("kind-plan")
@KIND_IMAGE
@click.option("--profile", type=click.Choice(["dev", "staging", "prod"]), default=None,
              help="Vault: dev (one dev-mode Pod) or staging/prod (3 raft Pods, TLS).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=None,
              help="Write cluster.yaml, values/, rendered/ here (default: <state>/kind).")
@click.option("--vault-values", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Your Vault Helm values, merged into the Vault chart's.")
@click.option("--json", "as_json", is_flag=True,
              help="Print {dir, rendered, node_image, images, plan} on stdout (a step's argv is "
                   "empty when the harness does it itself).")
@click.pass_context
def backend_kind_plan(ctx: click.Context, kind_image: str | None, profile: str | None,
                      out_dir: Path | None, vault_values: Path | None,
                      as_json: bool) -> None:
    """Render and validate the kind backend offline (cluster config, chart values, helm
    lint + template) and print the plan of steps `kind-up` would run."""
    from harness.backends.kind.environment import KindEnvironment

    kind = KindEnvironment(settings_from(ctx, vault_values=vault_values,
                                         kind_image=kind_image, profile=profile))
    rendered = kind.render(out_dir)
    if as_json:
        emit_json({"dir": rendered["dir"],
                   "rendered": {k: len(v) for k, v in rendered["rendered"].items()},
                   "node_image": kind.kind_image, "images": rendered["images"],
                   "plan": [{"name": s.name, "argv": s.argv} for s in kind.plan()]})
        return
    err.print(f"rendered into {rendered['dir']}: "
              + ", ".join(f"{k} {len(v)} objects" for k, v in rendered["rendered"].items()))
    err.print(f"images (node image: {kind.kind_image}; local: built here and loaded, "
              "official: pulled):")
    for img in rendered["images"]:
        click.echo(f"  {img}")
    err.print("plan:")
    for i, step in enumerate(kind.plan(), 1):
        click.echo(f"{i:2}. {step.name}\n      {step.describe()}")


@backend.command("kind-up")
@KIND_IMAGE
@click.option("--profile", type=click.Choice(["dev", "staging", "prod"]), default=None,
              help="Vault: dev (one dev-mode Pod) or staging/prod (3 raft Pods, TLS).")
@click.pass_context
def backend_kind_up(ctx: click.Context, kind_image: str | None, profile: str | None) -> None:
    """Create the kind cluster and install the platform (the same as `harness up
    --backend kind`): detached, with its existing-backend config in <state>/kind."""
    from harness.cli.environment import charts_up

    charts_up("kind", settings_from(ctx, kind_image=kind_image, profile=profile))


@backend.command("kind-down")
@click.pass_context
def backend_kind_down(ctx: click.Context) -> None:
    """Stop the port-forwards and delete the kind cluster `kind-up` created."""
    from harness.backends.kind.environment import KindEnvironment

    kind = KindEnvironment.from_record(settings_from(ctx))
    kind.down()
    err.print(f"kind cluster {kind.name} deleted")
