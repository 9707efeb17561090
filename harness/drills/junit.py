"""A drill run as JUnit XML, for CI: one <testsuite> per run, one <testcase> per drill.
A FAIL verdict is a <failure> whose message is the verdict's reasons (an aborted drill:
an <error>), a refused drill a <skipped> naming what it needs; the figures (RTO, its
objective, RPO, measurements) are <property> elements of the testcase, the timeline its
<system-out>. Everything is redacted: no secret value reaches the file."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness.drills.model import DrillResult
from harness.runtime.redact import redact

SUITE = "heracles-drills"


@dataclass(frozen=True)
class NotRun:
    """A drill that did not run, and why: refused before anything started (<skipped>:
    the backend lacks what it needs, a flag is missing), or its environment could not be
    reached (`error`: an <error>)."""

    drill: str
    backend: str
    reason: str
    error: bool = False


def _properties(parent: ET.Element, props: dict[str, object]) -> None:
    element = ET.SubElement(parent, "properties")
    for name, value in props.items():
        ET.SubElement(element, "property", name=name, value=redact(str(value)))


def result_properties(r: DrillResult) -> dict[str, object]:
    """The figures CI dashboards read: verdict, RTO and its objective, RPO."""
    props: dict[str, object] = {
        "verdict": r.verdict, "backend": r.backend, "profile": r.profile,
        "rto_seconds": r.rto_seconds if r.rto_seconds is not None else "none",
        "rto_objective_seconds": r.objectives.rto_seconds,
        "rpo_objective_writes": r.objectives.rpo_writes}
    for key in ("lost", "unit", "window_seconds", "unexpected_loss"):
        if key in r.rpo:
            props[f"rpo_{key}"] = r.rpo[key]
    for name, seconds in r.measurements.items():
        props[f"measurement.{name}"] = seconds
    return props


def _case(suite: ET.Element, item: DrillResult | NotRun) -> None:
    case = ET.SubElement(suite, "testcase", classname=f"drill.{item.backend}",
                         name=item.drill)
    if isinstance(item, NotRun):
        case.set("time", "0")
        if item.error:
            ET.SubElement(case, "error", message=redact(item.reason),
                          type="EnvironmentError").text = redact(item.reason)
        else:
            ET.SubElement(case, "skipped", message=redact(item.reason))
        return
    case.set("time", f"{item.duration:.3f}")
    _properties(case, result_properties(item))
    reasons = [redact(x) for x in item.reasons]
    if reasons:
        tag = "error" if item.error else "failure"
        bad = ET.SubElement(case, tag, message="; ".join(reasons),
                            type="DrillAborted" if item.error else "DrillFailed")
        bad.text = "\n".join(reasons)
    timeline = "\n".join(f"{e.at:8.2f}s {e.kind:<9} {e.message}"
                         + {True: " ok", False: " FAILED", None: ""}[e.ok]
                         for e in item.events)
    ET.SubElement(case, "system-out").text = redact(timeline)


def junit_xml(items: list[DrillResult | NotRun]) -> ET.ElementTree:
    results = [i for i in items if isinstance(i, DrillResult)]
    started = min((r.started_utc for r in results), default=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE, "tests": str(len(items)),
        "failures": str(sum(bool(r.reasons) and not r.error for r in results)),
        "errors": str(sum(bool(r.error) for r in results)
                      + sum(isinstance(i, NotRun) and i.error for i in items)),
        "skipped": str(sum(isinstance(i, NotRun) and not i.error for i in items)),
        "time": f"{sum(r.duration for r in results):.3f}",
        "timestamp": started, "hostname": socket.gethostname()})
    for item in items:
        _case(suite, item)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, items: list[DrillResult | NotRun]) -> Path:
    """The JUnit XML of `items` (drills run or refused) in `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(items).write(path, encoding="utf-8", xml_declaration=True)
    return path
