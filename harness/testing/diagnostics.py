"""What a failed scenario attaches to its report: first the test namespace's own events
and objects (what the test did and what answered it: usually the cause), then the
environment's health and log tails and the cluster's recent events — always passed
through redaction, on any backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.runtime.redact import redact

if TYPE_CHECKING:
    from harness.backends.base import Environment
    from harness.clients.kube import KubeClient


def _events(kube: KubeClient, scope: list[str], limit: int) -> str:
    """`kubectl get events <scope> --sort-by=.lastTimestamp`: the header and the newest
    `limit` rows."""
    ev = kube.kubectl("get", "events", *scope, "--sort-by=.lastTimestamp", check=False)
    lines = (ev.stdout.strip() or ev.stderr.strip()).splitlines()
    return "\n".join(lines[:1] + lines[1:][-limit:])


def collect(env: Environment, kube: KubeClient | None = None, namespace: str | None = None,
            log_lines: int = 20, events: int = 30) -> str:
    parts: list[str] = []
    if kube is not None and namespace:
        try:
            parts.append(f"== events in {namespace} ==\n"
                         + _events(kube, ["-n", namespace], 2 * events))
            objs = kube.kubectl("get", "all,secrets,serviceaccounts", "-n", namespace,
                                "-o", "wide", check=False)
            parts.append(f"== objects in {namespace} ==\n{objs.stdout}{objs.stderr}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must never mask the failure
            parts.append(f"(could not query namespace {namespace}: {exc})")
    parts.append(env.diagnostics(log_lines))
    if kube is not None:
        try:
            parts.append("== recent events ==\n" + _events(kube, ["-A"], events))
        except Exception as exc:  # noqa: BLE001 - diagnostics must never mask the failure
            parts.append(f"(could not query Kubernetes: {exc})")
    return redact("\n".join(p for p in parts if p))
