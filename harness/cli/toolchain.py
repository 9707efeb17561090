"""`harness toolchain install` and `harness toolchain status`: the pinned binaries."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.table import Table

from harness.cli.common import (
    TOOLCHAIN_NAMES,
    components_option,
    emit_json,
    err,
    out,
    settings_from,
)
from harness.progress import Reporter
from harness.toolchain import Toolchain


@click.group()
def toolchain() -> None:
    """Build/install and inspect the pinned binaries."""


@toolchain.command("install")
@click.option("--only", multiple=True, type=TOOLCHAIN_NAMES,
              help="Component(s) to install (repeat or comma-separate).")
@click.option("--force", is_flag=True, help="Rebuild even when the cache entry is valid.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each component's result (cached, built, installed) on stdout.")
@click.pass_context
def toolchain_install(ctx: click.Context, only: tuple[tuple[str, ...], ...], force: bool,
                      as_json: bool) -> None:
    """Build or install every binary the local backend uses (cached by version)."""
    settings = settings_from(ctx)
    results = Toolchain(settings.cache_dir).install(components_option(only), Reporter(err),
                                                    force=force)
    if as_json:
        emit_json({"cache_dir": str(settings.cache_dir),
                   "components": [asdict(r) for r in results]})


@toolchain.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.option("--only", multiple=True, type=TOOLCHAIN_NAMES,
              help="Component(s) to show (repeat or comma-separate).")
@click.pass_context
def toolchain_status(ctx: click.Context, as_json: bool,
                     only: tuple[tuple[str, ...], ...]) -> None:
    """Each component: version, path, present/missing (hashes are verified)."""
    settings = settings_from(ctx)
    rows = Toolchain(settings.cache_dir).status(components_option(only))
    if as_json:
        emit_json({"cache_dir": str(settings.cache_dir),
                   "components": [r.as_json() for r in rows]})
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
