"""`harness vault-values PATH`: judge a team's Vault Helm values offline — a values
file, or the Argo CD Application that installs the Vault/OpenBao chart with its values."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.common import emit_json, out
from harness.settings import PROFILES


@click.command("vault-values")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--profile", type=click.Choice(PROFILES), default="staging", show_default=True)
@click.option("--repo", "repo_root", type=click.Path(path_type=Path, file_okay=False,
                                                     exists=True), default=None,
              help="For an Application file: the repository root its paths (chart path, "
                   "valueFiles, $ref/...) are relative to (default: the nearest parent "
                   "directory holding them).")
@click.option("--json", "as_json", is_flag=True)
def vault_values_check(path: Path, profile: str, repo_root: Path | None,
                       as_json: bool) -> None:
    """Judge a Vault Helm values file — or an Argo CD Application installing the Vault
    chart with inline values, valuesObject or valueFiles — against a profile without
    starting anything: what runs as written, what is adapted to one machine, what it
    cannot deliver (exit 1)."""
    from harness.vault_config.values import load

    vv = load(path, profile, repo_root=repo_root)
    if as_json:
        emit_json(vv.report())
    else:
        out.print(f"{path}: {vv.mode}, {vv.replicas} replica(s), storage {vv.storage} "
                  f"— against the {profile} profile:", markup=False)
        if vv.origin != "Helm values file":
            out.print(f"  ({vv.origin})", markup=False, highlight=False)
        for f in vv.findings:
            out.print(f"  {f.line()}", highlight=False, markup=False)
    if any(f.level == "cannot" for f in vv.findings):
        sys.exit(1)
