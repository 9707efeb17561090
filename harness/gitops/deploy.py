"""GitOps content into a running environment, as `harness apply` and `harness gitops
bootstrap` do it: plain manifests applied (validated, service-mapped), the Applications
of a platform repository awaited, an environment's app-of-apps bootstrapped (its own
tree awaited, not every Application in argocd; CRDs it lacks named at once).

These are the steps around the library calls (which client, which file, how the
remaining time is shared between waits); the commands only parse options and print.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.wait import Hopeless, eventually

if TYPE_CHECKING:
    from harness.backends.base import Environment
    from harness.clients.argocd import Applications
    from harness.clients.kube import KubeClient
    from harness.clients.manifests import Document

Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    """Default log sink."""


def apply_manifests(platform: Environment, paths: list[Path], log: Log = _quiet) -> int:
    """Validate every document, rewrite in-cluster addresses through the service map,
    server-side apply, and let the environment react (e.g. reload Prometheus rules).
    Returns how many objects were applied."""
    return len(_apply(platform, paths, log))


def _apply(platform: Environment, paths: list[Path], log: Log) -> list[Document]:
    """apply_manifests, returning the applied (service-mapped) documents."""
    from harness.clients import manifests
    from harness.clients.kube import dynamic_client

    dyn = dynamic_client(platform.kube_client().api_client)
    docs = manifests.apply_paths(paths, dyn, platform.service_map(), log=log)
    platform.after_apply(docs)
    return docs


def wait_synced(platform: Environment, apps: dict[str, Any], timeout: float,
                log: Log = _quiet) -> list[str]:
    """Wait for every expected Application of an `apply_repo` report to be Synced (health
    not required: payload may legitimately be degraded). Returns "name: why" for each
    that is not — including those the harness could not serve — empty when all are."""
    from harness.clients.argocd import Applications

    argo = Applications(platform.kube_client())
    failed = []
    for name in apps["expected"]:
        if name in apps.get("unservable", {}):
            failed.append(f"{name}: {apps['unservable'][name]}")
            continue
        try:
            st = argo.wait(name, sync="Synced", health=None, timeout=timeout)
            log(f"Application {name}: {st['sync']} / {st['health']}")
        except AssertionError as exc:
            failed.append(f"{name}: {exc}")
    return failed


@dataclass
class Bootstrapped:
    """An app-of-apps applied and every Application of its tree Synced and Healthy."""

    app_of_apps: Path
    seconds: float  # from the apply to the last Application healthy
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> state


class NotSynced(HarnessError):
    """The bootstrap's time ran out: the message names each Application of the tree
    that is not Synced/Healthy, with its errors (`harness gitops bootstrap` exits 1)."""


class MissingCRDs(HarnessError):
    """An Application of the tree needs kinds whose CRDs the cluster lacks: no wait can
    help, so the bootstrap stops at once naming them and the fix (exit 2)."""


CRD_FIXES = {"monitoring.coreos.com": "harness crds install prometheus-operator"}
"""CRD group -> the command that installs its CRDs here."""

_COULD_NOT_FIND = re.compile(
    r"could not find ([a-z0-9-]+(?:\.[a-z0-9-]+)+)/(?:v[0-9a-z]+/)?([A-Z][A-Za-z0-9]*)")
"""Argo CD's words for a kind the cluster does not serve: "The Kubernetes API could not
find monitoring.coreos.com/PrometheusRule for requested resource ... Make sure the
"PrometheusRule" CRD is installed on the destination cluster." """
_MAKE_SURE = re.compile(r'Make sure the "([A-Z][A-Za-z0-9]*)" CRD is installed')


def app_of_apps_path(platform: Environment, env: str | None = None) -> Path:
    """fixtures/gitops/argocd/<env>/app-of-apps.yaml; env defaults to the profile, so
    each environment follows its own branch."""
    env = env or platform.settings.profile
    return Path(platform.settings.fixtures_dir) / "gitops" / "argocd" / env / "app-of-apps.yaml"


def _messages(state: dict[str, Any]) -> list[str]:
    """What an Application says went wrong: its conditions, its last operation and the
    operation's per-resource results."""
    op = state.get("operation") or {}
    texts = [str(c.get("message", "")) for c in state.get("conditions") or []]
    texts.append(str(op.get("message", "")))
    texts += [str(r.get("message", ""))
              for r in (op.get("syncResult") or {}).get("resources") or []]
    return [t for t in texts if t]


def needed_kinds(state: dict[str, Any]) -> set[tuple[str, str]]:
    """(group, Kind) pairs an Application reports the cluster could not find."""
    found = {(m.group(1), m.group(2)) for t in _messages(state)
             for m in _COULD_NOT_FIND.finditer(t)}
    groups = {str(r.get("kind")): str(r.get("group") or "") for r in state.get("resources") or []}
    for t in _messages(state):
        for m in _MAKE_SURE.finditer(t):
            if groups.get(m.group(1)):
                found.add((groups[m.group(1)], m.group(1)))
    return found


def installed_kinds(kube: KubeClient) -> set[tuple[str, str]]:
    """(group, Kind) of every CRD the cluster has now."""
    from kubernetes import client

    crds = client.ApiextensionsV1Api(kube.api_client).list_custom_resource_definition()
    return {(c.spec.group, c.spec.names.kind) for c in crds.items}


def missing_crd_message(missing: dict[tuple[str, str], set[str]]) -> str:
    """One line: the missing kinds, who needs them, and how to install them."""
    kinds = ", ".join(f"{g}/{k}" for g, k in sorted(missing))
    apps = sorted({a for names in missing.values() for a in names})
    who = (f"Application {apps[0]} needs" if len(apps) == 1
           else f"Applications {', '.join(apps)} need")
    fixes = sorted({CRD_FIXES.get(g, f"install the CRDs of {g}") for g, _k in missing})
    return (f"missing CRDs: {who} {kinds}, which the cluster does not serve; fix: "
            f"{'; '.join(fixes)}, then run harness gitops bootstrap again")


@dataclass
class AppTree:
    """The Applications a bootstrap waits for: the roots it applied and, as each lists
    them among its resources, the Applications it owns (recursively) — not whatever
    else sits in the argocd namespace (a leftover of another run would never sync)."""

    apps: Applications
    kube: KubeClient
    roots: list[str]
    log: Log = _quiet
    missing: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    resynced: set[str] = field(default_factory=set)

    def states(self) -> dict[str, dict[str, Any] | None]:
        """name -> state (None: not created yet) for the roots and what they own."""
        from kubernetes.client import ApiException

        from harness.clients.argocd import NAMESPACE

        out: dict[str, dict[str, Any] | None] = {}
        todo = list(self.roots)
        while todo:
            name = todo.pop(0)
            if name in out:
                continue
            try:
                state: dict[str, Any] | None = self.apps.state(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                state = None
            out[name] = state
            todo += [str(r["name"]) for r in (state or {}).get("resources") or []
                     if r.get("kind") == "Application" and r.get("group") == "argoproj.io"
                     and r.get("namespace", NAMESPACE) == NAMESPACE]
        return out

    def check_crds(self, states: dict[str, dict[str, Any] | None]) -> None:
        """Hopeless when an Application needs a kind no CRD serves and the tree does not
        bring that CRD itself (then Argo CD's retries would get there). Argo CD's message
        can be older than the CRD (installed since): the cluster is asked, too."""
        needed: dict[tuple[str, str], set[str]] = {}
        for name, state in states.items():
            for kind in needed_kinds(state or {}):
                needed.setdefault(kind, set()).add(name)
        if not needed:
            return
        brought = {str(r.get("name", "")) for s in states.values() if s
                   for r in s.get("resources") or [] if r.get("kind") ==
                   "CustomResourceDefinition"}
        installed = installed_kinds(self.kube)
        missing = {k: v for k, v in needed.items() if k not in installed
                   and not any(crd.endswith("." + k[0]) for crd in brought)}
        if missing:
            # Argo CD may name one kind per attempt: the others of those groups that the
            # Applications hold and the cluster lacks are named too.
            groups = {g for g, _k in missing}
            for name, state in states.items():
                for r in (state or {}).get("resources") or []:
                    kind = (str(r.get("group") or ""), str(r.get("kind") or ""))
                    if kind[0] in groups and kind not in installed:
                        missing.setdefault(kind, set()).add(name)
            self.missing = missing
            raise Hopeless(missing_crd_message(missing))

    def resync_failed(self, states: dict[str, dict[str, Any] | None]) -> None:
        """Argo CD does not retry a revision whose automated sync failed (retries used
        up): once the cause is gone (a CRD installed since), the runbook's manual sync is
        needed — asked once per Application."""
        for name, state in states.items():
            if (state and name not in self.resynced and state["sync"] == "OutOfSync"
                    and (state.get("operation") or {}).get("phase") in ("Failed", "Error")):
                self.resynced.add(name)
                self.apps.sync(name)
                self.log(f"Application {name}: its last sync failed; synced again")

    def settled(self) -> dict[str, dict[str, Any]]:
        """The check: every Application of the tree Synced and Healthy."""
        states = self.states()
        self.check_crds(states)
        self.resync_failed(states)
        pending = []
        for name, st in states.items():
            if st is None:
                pending.append(f"{name}: not created yet")
            elif st["sync"] != "Synced" or st["health"] != "Healthy":
                unhealthy = [f"{r['kind']}/{r['name']}: {r.get('health', {}).get('status')}"
                             for r in st["resources"] if r.get("health", {}).get("status")
                             not in (None, "Healthy")]
                why = "; ".join(_messages(st) + unhealthy)[:300]
                pending.append(f"{name}: sync={st['sync']} health={st['health']}"
                               + (f" ({why})" if why else ""))
        if pending:
            raise AssertionError("; ".join(pending))
        return {n: s for n, s in states.items() if s is not None}


def bootstrap(platform: Environment, env: str | None = None, timeout: float = 180.0,
              log: Log = _quiet) -> Bootstrapped:
    """Apply the environment's app-of-apps and wait, within `timeout` seconds, until it
    and the Applications it owns are Synced and Healthy. Raises MissingCRDs at once when
    one of them needs CRDs the cluster lacks, NotSynced (naming what is not Synced/Healthy,
    with its errors) when the time runs out."""
    from harness.clients.argocd import Applications

    path = app_of_apps_path(platform, env)
    if not path.is_file():
        raise HarnessError(f"{path}: no app-of-apps for environment "
                           f"{env or platform.settings.profile!r}")
    kube = platform.kube_client()
    docs = _apply(platform, [path], log)
    log(f"applied {path}")
    roots = [d.name for d in docs if d.kind == "Application"]
    if not roots:
        raise HarnessError(f"{path}: no Argo CD Application in it")
    tree = AppTree(Applications(kube), kube, roots, log)
    t0 = time.monotonic()
    try:
        states = eventually(tree.settled, timeout=timeout, interval=0.5, error=NotSynced,
                            description=f"app-of-apps {', '.join(roots)} and its "
                                        "Applications Synced/Healthy")
    except NotSynced as exc:
        if tree.missing:
            raise MissingCRDs(missing_crd_message(tree.missing)) from exc
        raise
    return Bootstrapped(app_of_apps=path, seconds=time.monotonic() - t0, applications=states)
