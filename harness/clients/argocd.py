"""Argo CD Applications as the runbook handles them: refresh, `kubectl patch ...
operation sync`, wait for Synced/Healthy — on any backend."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiException

from harness.wait import eventually

if TYPE_CHECKING:
    from harness.clients.kube import KubeClient

NAMESPACE = "argocd"


class Applications:
    """Argo CD Applications in the argocd namespace."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def get(self, name: str) -> dict[str, Any]:
        return self.kube.get_custom("argoproj.io", "v1alpha1", NAMESPACE, "applications", name)

    def names(self) -> list[str]:
        items = self.kube.list_custom("argoproj.io", "v1alpha1", NAMESPACE, "applications")
        return sorted(i["metadata"]["name"] for i in items)

    def state(self, name: str) -> dict[str, Any]:
        """sync status, health, revision, conditions, the last operation's phase."""
        status = self.get(name).get("status", {})
        return {"sync": status.get("sync", {}).get("status"),
                "health": status.get("health", {}).get("status"),
                "revision": status.get("sync", {}).get("revision"),
                "conditions": status.get("conditions", []),
                "operation": status.get("operationState", {}),
                "resources": status.get("resources", [])}

    def refresh(self, name: str, hard: bool = False) -> None:
        """`argocd app get --refresh`: the annotation the controller acts on at once.
        Removed first: setting it while an earlier request still sits there is no change
        at all — no watch event, no refresh (seen in CI: the Application kept the old
        revision for 90 s while it was asked every 10 s)."""
        self.kube.kubectl("annotate", "application", name, "-n", NAMESPACE,
                          "argocd.argoproj.io/refresh-")
        self.kube.kubectl("annotate", "application", name, "-n", NAMESPACE,
                          f"argocd.argoproj.io/refresh={'hard' if hard else 'normal'}",
                          "--overwrite")

    def sync(self, name: str, revision: str | None = None, timeout: float = 60) -> None:
        """The runbook's manual sync: `kubectl patch application ... operation sync`,
        returning once the controller has started it.

        An operation requested while another runs (an automated sync after a push: the
        Git server's webhook makes those immediate) is dropped when the running one ends —
        the controller clears `operation` then — so this waits for no operation to be in
        progress (`argocd app sync` refuses a second one), asks, and asks again until
        the controller's operationState is this request (marked by a unique info entry)."""
        import secrets

        mark = secrets.token_hex(6)
        op: dict[str, Any] = {"sync": {"syncStrategy": {"hook": {}}},
                              "initiatedBy": {"username": "heracles-harness"},
                              "info": [{"name": "heracles-request", "value": mark}]}
        if revision:
            op["sync"]["revision"] = revision

        def started() -> bool:
            app = self.get(name)
            state = app.get("status", {}).get("operationState", {})
            info = (state.get("operation") or {}).get("info") or []
            if {"name": "heracles-request", "value": mark} in info:
                return True
            if not app.get("operation") and state.get("phase") != "Running":
                self.kube.kubectl("patch", "application", name, "-n", NAMESPACE, "--type",
                                  "merge", "-p", json.dumps({"operation": op}))
            return False

        eventually(started, timeout=timeout, interval=0.5,
                   description=f"Application {name}: the manual sync started")

    def wait(self, name: str, sync: str | None = "Synced", health: str | None = "Healthy",
             revision: str | None = None, timeout: float = 90) -> dict[str, Any]:
        """Until the Application reaches the wanted sync/health (at `revision`). Waiting
        for a revision, the refresh is asked for again every 10 s: a refresh that lands
        while a sync operation (selfHeal) runs is consumed without a new comparison, and
        the next periodic one is minutes away."""
        asked = time.monotonic()

        def reached() -> dict[str, Any]:
            nonlocal asked
            try:
                st = self.state(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                raise AssertionError(f"Application {name} does not exist (yet): its "
                                     "parent has not created it") from None
            if revision is not None and st["revision"] != revision and \
                    time.monotonic() - asked > 10:
                self.refresh(name)
                asked = time.monotonic()
            if ((sync is None or st["sync"] == sync)
                    and (health is None or st["health"] == health)
                    and (revision is None or st["revision"] == revision)):
                return st
            errors = [c["message"] for c in st["conditions"] if "Error" in c.get("type", "")]
            unhealthy = [f"{r['kind']}/{r['name']}: {r.get('health', {}).get('status')} "
                         f"{r.get('health', {}).get('message', '')}"
                         for r in st["resources"]
                         if r.get("health", {}).get("status") not in (None, "Healthy")]
            raise AssertionError(f"Application {name}: sync={st['sync']} "
                                 f"health={st['health']} revision={st['revision']} "
                                 f"{'; '.join(errors + unhealthy)[:500]}")

        return eventually(reached, timeout=timeout, interval=0.2,
                          description=f"Application {name} {sync}/{health}")

    def wait_condition(self, name: str, contains: str, timeout: float = 90) -> str:
        """Until a condition (or the last operation) of the Application mentions text."""

        def found() -> str | None:
            st = self.state(name)
            texts = [c.get("message", "") for c in st["conditions"]]
            texts.append(st["operation"].get("message", ""))
            texts += [r.get("message", "") for r in
                      st["operation"].get("syncResult", {}).get("resources", [])]
            texts += [r.get("health", {}).get("message", "") for r in st["resources"]]
            return next((t for t in texts if contains in t), None)

        return eventually(found, timeout=timeout, interval=0.2,
                          description=f"Application {name} reports {contains!r}")

    def wait_all(self, names: list[str], timeout: float = 120) -> float:
        t0 = time.monotonic()
        for name in names:
            self.wait(name, timeout=max(1.0, timeout - (time.monotonic() - t0)))
        return time.monotonic() - t0


__all__ = ["NAMESPACE", "Applications"]
