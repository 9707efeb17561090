"""A drill's reports: report.json (machine-readable, RTO/RPO figures), report.md,
report.html (one self-contained page) and timeline.png. Everything passes through the
redactor once more before it is written: no secret value reaches a report."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader

from harness.drills.model import DrillResult
from harness.runtime.redact import redact

COLORS = {"setup": "#7f8c8d", "fault": "#c0392b", "check": "#2980b9",
          "recovery": "#e67e22", "restored": "#27ae60", "info": "#8e44ad",
          "error": "#000000"}


def rpo_text(r: DrillResult) -> str:
    if not r.rpo:
        return "not measured"
    parts = [f"{r.rpo.get('lost', 0)} {r.rpo.get('unit', 'write(s)')} lost"]
    if "window_seconds" in r.rpo:
        parts.append(f"window {r.rpo['window_seconds']:.1f} s "
                     f"({r.rpo.get('window', 'last backup → fault')})")
    if r.rpo.get("unexpected_loss"):
        parts.append(f"{r.rpo['unexpected_loss']} beyond the backup")
    return "; ".join(parts)


NO_PNG = ("timeline.png not drawn: matplotlib is not installed "
          "(pip install 'heracles-harness[reports]')")
"""What the reports say instead of the picture when the `reports` extra is missing."""


def can_draw() -> bool:
    """Whether the `reports` extra (matplotlib) is installed."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def timeline_png(r: DrillResult, path: Path) -> None:
    """Events on a time axis, the outage (fault → restored) shaded and labelled RTO."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.28 * max(4, len(r.events))))
    for i, e in enumerate(r.events):
        y = len(r.events) - i
        ax.scatter([e.at], [y], color=COLORS.get(e.kind, "#333"), zorder=3,
                   marker="x" if e.ok is False else "o")
        ax.text(e.at, y, f"  {e.message[:70]}", va="center", fontsize=7)
    if r.fault_at is not None:
        end = r.restored_at if r.restored_at is not None else r.duration
        ax.axvspan(r.fault_at, end, color="#c0392b", alpha=0.12)
        label = f"RTO {r.rto_seconds:.1f}s" if r.rto_seconds is not None else "not restored"
        ax.text((r.fault_at + end) / 2, len(r.events) + 0.8, label, ha="center",
                color="#c0392b", fontsize=9, fontweight="bold")
    ax.set_yticks([])
    ax.set_ylim(0, len(r.events) + 1.5)
    ax.set_xlim(-0.5, max(r.duration, 1) * 1.35)
    ax.set_xlabel("seconds since drill start")
    ax.set_title(f"drill {r.drill}: {r.verdict}")
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(r: DrillResult, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = {k: directory / n for k, n in (("json", "report.json"), ("md", "report.md"),
                                         ("html", "report.html"), ("png", "timeline.png"))}
    drawn = can_draw()
    if drawn:
        timeline_png(r, out["png"])
    else:
        del out["png"]
    env = Environment(loader=PackageLoader("harness.drills"), autoescape=False)
    ctx = {"r": r, "reasons": r.reasons, "rpo": rpo_text(r), "no_png": None if drawn else NO_PNG,
           "rto": f"{r.rto_seconds:.2f} s" if r.rto_seconds is not None else "not restored"}
    out["json"].write_text(redact(json.dumps(r.to_json(), indent=2)) + "\n")
    out["md"].write_text(redact(env.get_template("report.md.j2").render(**ctx)))
    html_env = Environment(loader=PackageLoader("harness.drills"), autoescape=True)
    png = base64.b64encode(out["png"].read_bytes()).decode() if drawn else ""
    out["html"].write_text(redact(html_env.get_template("report.html.j2").render(png=png,
                                                                                **ctx)))
    return out
