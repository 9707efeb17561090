"""What a failed scenario attaches to its report: component health, log tails, recent
Kubernetes events and the test namespace's objects — always passed through redaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.runtime.redact import redact

if TYPE_CHECKING:
    from harness.kubeclient import KubeClient
    from harness.platform import Platform


def collect(platform: Platform, kube: KubeClient | None = None, namespace: str | None = None,
            log_lines: int = 20, events: int = 30) -> str:
    parts: list[str] = []
    for name, comp in platform.components.items():
        for proc in comp.processes():
            state = "ready" if proc.ready() else ("running, NOT ready" if proc.running()
                                                  else "NOT running")
            parts.append(f"== {name}/{proc.name}: {state} (pid {proc.pid})")
        for pname, tail in comp.log_tails(log_lines).items():
            parts.append(f"-- log tail {pname} --\n{tail}")
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
    return redact("\n".join(parts))
