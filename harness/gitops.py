"""GitOps helpers for scenarios, drills and `harness git`: a working copy of the
platform repository on the local Git server (commit, branch, merge, push — real git
over smart HTTP), and Argo CD Applications as the runbook handles them (refresh,
`kubectl patch ... operation sync`, wait for Synced/Healthy)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kubernetes.client import ApiException

from harness.components.git import git
from harness.errors import HarnessError
from harness.wait import eventually

NAMESPACE = "argocd"


class Workspace:
    """A clone of a repository on the harness's Git server."""

    def __init__(self, url: str, path: Path, branch: str = "dev") -> None:
        self.url = url
        self.path = path
        if not (path / ".git").exists():
            git("clone", "-q", "--branch", branch, url, str(path))
        else:
            self.checkout(branch)

    def run(self, *args: str) -> str:
        return git(*args, cwd=self.path)

    def checkout(self, branch: str) -> None:
        self.run("fetch", "-q", "origin")
        self.run("checkout", "-q", "-B", branch, f"origin/{branch}")

    def write(self, relpath: str, text: str) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def read(self, relpath: str) -> str:
        return (self.path / relpath).read_text()

    def remove(self, relpath: str) -> None:
        self.run("rm", "-q", relpath)

    def commit(self, message: str) -> str:
        """Commit everything changed; returns the new commit's sha."""
        self.run("add", "-A")
        self.run("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def push(self, branch: str | None = None) -> str:
        branch = branch or self.run("rev-parse", "--abbrev-ref", "HEAD").strip()
        self.run("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.head()

    def merge(self, source: str, into: str, message: str | None = None) -> str:
        """Promotion: merge origin/<source> into <into> and push it."""
        self.checkout(into)
        self.run("merge", "-q", "--no-ff", "-m", message or f"promote {source} to {into}",
                 f"origin/{source}")
        return self.push(into)

    def remote_head(self, branch: str) -> str:
        out = self.run("ls-remote", "origin", f"refs/heads/{branch}")
        if not out.strip():
            raise HarnessError(f"branch {branch} does not exist on {self.url}")
        return out.split()[0]


class Applications:
    """Argo CD Applications in the argocd namespace."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.kube.custom.get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NAMESPACE, "applications", name))

    def names(self) -> list[str]:
        items = self.kube.custom.list_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NAMESPACE, "applications")["items"]
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

    def sync(self, name: str, revision: str | None = None) -> None:
        """The runbook's manual sync: `kubectl patch application ... operation sync`."""
        op: dict[str, Any] = {"sync": {"syncStrategy": {"hook": {}}}}
        if revision:
            op["sync"]["revision"] = revision
        self.kube.kubectl("patch", "application", name, "-n", NAMESPACE, "--type", "merge",
                          "-p", json.dumps({"operation": {
                              "initiatedBy": {"username": "heracles-harness"}, **op}}))

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


__all__ = ["NAMESPACE", "Applications", "Workspace"]
