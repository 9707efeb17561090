"""Re-pointing an environment whose local addresses moved between `down` and `up`.

Ports are kept per state directory, but one can be taken by something else while the
environment is down. The addresses the old ports made live on in two places that the
next `up` does not rewrite by itself: the seeded Git repository (Argo CD's child
Applications carry the Git URL; stores carry the Vault URL) and objects in etcd
(Applications, SecretStores, ClusterSecretStores, Argo CD repository Secrets). Both are
rewritten here, old address -> new, and the Applications are refreshed.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.backends.local.components.git import GitServer
    from harness.clients.kube import KubeClient

Events = Callable[[str], None]

# (group, version, plural) of the objects that hold platform addresses.
ADDRESS_HOLDERS = (
    ("argoproj.io", "v1alpha1", "applications"),
    ("external-secrets.io", "v1beta1", "secretstores"),
    ("external-secrets.io", "v1beta1", "clustersecretstores"),
)


def moved_addresses(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """Old local address -> new, for every in-cluster name whose target changed."""
    return {old[k]: new[k] for k in old if k in new and old[k] != new[k]}


def rewrite(text: str, moves: dict[str, str]) -> str:
    """Every old address replaced, never a longer port that merely starts the same
    (…:8200 is not …:82000)."""
    for old, new in sorted(moves.items(), key=lambda kv: len(kv[0]), reverse=True):
        text = re.sub(re.escape(old) + r"(?![0-9])", new, text)
    return text


def _rewrite_objects(kube: KubeClient, moves: dict[str, str]) -> list[str]:
    """Patch every address-holding object whose spec names a moved address."""
    from kubernetes import client

    changed: list[str] = []
    for group, version, plural in ADDRESS_HOLDERS:
        try:
            listed: Any = kube.custom.list_cluster_custom_object(group, version, plural)
        except client.ApiException as exc:
            if exc.status == 404:  # the CRD is not installed: nothing to re-point
                continue
            raise
        for obj in listed.get("items", []):
            spec = obj.get("spec", {})
            new_spec = json.loads(rewrite(json.dumps(spec), moves))
            if new_spec == spec:
                continue
            meta = obj["metadata"]
            body = {"spec": new_spec}
            if "namespace" in meta:
                kube.custom.patch_namespaced_custom_object(
                    group, version, meta["namespace"], plural, meta["name"], body)
            else:
                kube.custom.patch_cluster_custom_object(group, version, plural,
                                                        meta["name"], body)
            changed.append(f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}")
    # Argo CD repository credentials keep the repo URL in their data.
    for sec in kube.core.list_secret_for_all_namespaces(
            label_selector="argocd.argoproj.io/secret-type=repository").items:
        data = dict(sec.data or {})
        url = base64.b64decode(data.get("url", "")).decode()
        meta = sec.metadata
        if meta and meta.name and meta.namespace and url \
                and (new_url := rewrite(url, moves)) != url:
            data["url"] = base64.b64encode(new_url.encode()).decode()
            kube.core.patch_namespaced_secret(meta.name, meta.namespace, {"data": data})
            changed.append(f"Secret {meta.namespace}/{meta.name}")
    return changed


def repoint(old: dict[str, str], new: dict[str, str], events: Events,
            git: GitServer | None = None, kube: KubeClient | None = None,
            argocd: bool = False) -> dict[str, str]:
    """Rewrite what holds the moved addresses — the Git server's repos, the cluster's
    objects — and hard-refresh the Applications (with `argocd`); returns the moves
    (empty: nothing moved)."""
    moves = moved_addresses(old, new)
    if not moves:
        return moves
    for before, after in moves.items():
        events(f"re-pointing {before} -> {after}")
    if git is not None:
        for repo, branches in git.rewrite_addresses(lambda t: rewrite(t, moves)).items():
            events(f"git: {repo} rewritten on {', '.join(branches)}")
    if kube is not None:
        changed = _rewrite_objects(kube, moves)
        if changed:
            events(f"re-pointed {len(changed)} object(s): {', '.join(changed)}")
        if argocd:
            from harness.clients.argocd import Applications

            apps = Applications(kube)
            for name in apps.names():
                apps.refresh(name, hard=True)
    return moves
