"""`harness vault-values PATH`: judge a team's Vault Helm values offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.cli.common import out
from harness.settings import PROFILES


@click.command("vault-values")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", type=click.Choice(PROFILES), default="staging", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def vault_values_check(path: Path, profile: str, as_json: bool) -> None:
    """Judge a Vault Helm values file against a profile without starting anything: what
    runs as written, what is adapted to one machine, what it cannot deliver (exit 1)."""
    from harness.vault_config.values import load

    vv = load(path, profile)
    if as_json:
        click.echo(json.dumps(vv.report(), indent=2))
    else:
        out.print(f"{path}: {vv.mode}, {vv.replicas} replica(s), storage {vv.storage} "
                  f"— against the {profile} profile:", markup=False)
        for f in vv.findings:
            out.print(f"  {f.line()}", highlight=False, markup=False)
    if any(f.level == "cannot" for f in vv.findings):
        sys.exit(1)
