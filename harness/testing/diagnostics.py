"""What a failed scenario attaches to its report: the environment's own health and log
tails, recent Kubernetes events and the test namespace's objects — always passed through
redaction, on any backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.runtime.redact import redact

if TYPE_CHECKING:
    from harness.backends.base import Environment
    from harness.clients.kube import KubeClient


def collect(env: Environment, kube: KubeClient | None = None, namespace: str | None = None,
            log_lines: int = 20, events: int = 30) -> str:
    parts: list[str] = [env.diagnostics(log_lines)]
    if kube is not None:
        try:
            ev = kube.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False)
            lines = ev.stdout.strip().splitlines()
            parts.append("== recent events ==\n" + "\n".join(lines[:1] + lines[1:][-events:]))
            if namespace:
                objs = kube.kubectl("get", "all,secrets,serviceaccounts", "-n", namespace,
                                    "-o", "wide", check=False)
                parts.append(f"== objects in {namespace} ==\n{objs.stdout}{objs.stderr}")
        except Exception as exc:  # noqa: BLE001 - diagnostics must never mask the failure
            parts.append(f"(could not query Kubernetes: {exc})")
    return redact("\n".join(p for p in parts if p))
