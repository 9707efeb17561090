"""`harness images build | list`: the OCI archives the real node and kind import."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from harness.cli.common import IMAGE_NAMES, components_option, emit_json, err, out, settings_from
from harness.images import ImageBuilder
from harness.progress import Reporter, fmt_seconds
from harness.toolchain import Toolchain


@click.group()
def images() -> None:
    """Build and list the container images (no registry, no base image pulled)."""


def _builder(ctx: click.Context) -> ImageBuilder:
    settings = settings_from(ctx)
    return ImageBuilder(Toolchain(settings.cache_dir), settings.cache_dir, Reporter(err))


@images.command("build")
@click.option("--only", multiple=True, type=IMAGE_NAMES,
              help="Image key(s) to build (repeat or comma-separate).")
@click.option("--force", is_flag=True, help="Rebuild even when the cached archive matches.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def images_build(ctx: click.Context, only: tuple[tuple[str, ...], ...], force: bool,
                 as_json: bool) -> None:
    """Build what changed; every archive is cached by the hash of its inputs."""
    results = _builder(ctx).build(components_option(only), force=force)
    if as_json:
        emit_json([r.as_json() for r in results])
        return
    table = Table(title="images")
    for col in ("image", "action", "size", "time", "digest"):
        table.add_column(col)
    for r in results:
        table.add_row(r.ref, r.action, f"{r.size / 1e6:.1f} MB",
                      fmt_seconds(r.build_seconds) if r.action == "built" else "-",
                      r.digest[:19])
    out.print(table)


@images.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def images_list(ctx: click.Context, as_json: bool) -> None:
    """Each image: reference, state (ok | stale | missing), archive, digest."""
    rows = _builder(ctx).listing()
    if as_json:
        emit_json([{"key": r.key, "ref": r.ref, "state": state,
                    **(meta.as_json() if meta else {})} for r, meta, state in rows])
    else:
        table = Table(title="images")
        for col in ("key", "image", "state", "size", "archive"):
            table.add_column(col)
        for r, meta, state in rows:
            style = "green" if state == "ok" else "red"
            table.add_row(r.key, r.ref, f"[{style}]{state}[/]",
                          f"{meta.size / 1e6:.1f} MB" if meta else "-",
                          meta.archive if meta else "run: harness images build")
        out.print(table)
    if any(state != "ok" for _r, _m, state in rows):
        sys.exit(1)


@images.command("node-image")
@click.option("--force", is_flag=True, help="Rebuild even when the cached archive matches.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def images_node_image(ctx: click.Context, force: bool, as_json: bool) -> None:
    """The kind node image, assembled here (Debian rootfs, kind's base files, kubeadm,
    kubelet, kubectl, the control plane's images preloaded); cached by its inputs."""
    from harness.images.node_image import NodeImageBuilder

    settings = settings_from(ctx)
    result = NodeImageBuilder(Toolchain(settings.cache_dir), settings.cache_dir,
                              Reporter(err)).build(force=force)
    if as_json:
        emit_json(result.as_json())
        return
    out.print(f"{result.ref}: {result.action}, {result.size / 1e6:.1f} MB, "
              f"{result.archive}, image id {result.image_id[:19]}"
              + (f", built in {fmt_seconds(result.build_seconds)}"
                 if result.action == "built" else ""), highlight=False)
