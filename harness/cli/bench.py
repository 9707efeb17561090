"""`harness bench`: the harness's own performance figures."""

from __future__ import annotations

import click

from harness.cli.common import emit_json, out, settings_from, show_event
from harness.settings import PROFILES


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--profile", type=click.Choice(PROFILES), default="dev")
@click.option("--only", type=click.Choice(["all", "node", "pods", "db"]), default="all",
              help="node: only the real node's figures (images, node start, Pod to Ready, "
                   "RSS). pods: the pods backend beside the local backend (start, RSS, "
                   "write -> Secret, on staging/prod Vault Pod failover). db: the "
                   "database's backup, restore, PITR RTO and replication lag (prod).")
@click.option("--db-size-mib", type=click.IntRange(16, 65536), default=1024,
              show_default=True, help="--only db: size of the generated database.")
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True)
@click.pass_context
def bench(ctx: click.Context, as_json: bool, profile: str, only: str, db_size_mib: int,
          repeat: int) -> None:
    """Measure start, attach, memory, and the envtest floor (etcd + apiserver alone)."""
    from harness.bench import render, run_bench, run_db_bench, run_node_bench, run_pods_bench

    settings = settings_from(ctx, profile=profile)
    if only == "db":
        report = run_db_bench(settings, show_event, repeat, db_size_mib)
    elif only == "node":
        report = run_node_bench(settings, show_event, repeat)
    elif only == "pods":
        report = run_pods_bench(settings, show_event, repeat)
    else:
        report = run_bench(settings, log=show_event, repeat=repeat)
    if as_json:
        emit_json(report.to_json())
    else:
        out.print(render(report))
