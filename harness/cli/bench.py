"""`harness bench`: the harness's own performance figures."""

from __future__ import annotations

import json

import click

from harness.cli.common import out, settings_from, show_event
from harness.settings import PROFILES


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--profile", type=click.Choice(PROFILES), default="dev")
@click.pass_context
def bench(ctx: click.Context, as_json: bool, profile: str) -> None:
    """Measure start, attach, memory, and the envtest floor (etcd + apiserver alone)."""
    from harness.bench import render, run_bench

    report = run_bench(settings_from(ctx, profile=profile), log=show_event)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        out.print(render(report))
