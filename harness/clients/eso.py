"""Helpers that read like the runbook: apply an ExternalSecret, force-sync it, read the
Secret it produces, judge its status. Used by the `eso` fixture and the drills."""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kubernetes import client

from harness.clients import manifests
from harness.clients.kube import dynamic_client
from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.wait import Hopeless, WaitTimeout, eventually

if TYPE_CHECKING:
    from harness.clients.kube import KubeClient
    from harness.clients.vault import VaultAdmin

GROUP = "external-secrets.io"


class ClusterView(Protocol):
    """What the ESO client needs of an Environment: where in-cluster addresses lead, and
    where the controllers' metrics are."""

    def service_map(self) -> dict[str, str]: ...

    @property
    def eso_metrics_addresses(self) -> list[str]: ...


def make_test_store(vault: VaultAdmin, eso: ExternalSecretsClient,
                    namespace: str) -> dict[str, str]:
    """SecretStore `vault` in `namespace` reading secret/<namespace>/* only: its own
    ServiceAccount (a namespaced store may only use one of its namespace), policy and
    kubernetes-auth role. Returns the names, for scenarios that break or restore them."""
    name = f"t-{namespace}"
    eso.kube.core.create_namespaced_service_account(namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="vault-reader")))
    vault.write_policy(name, f'path "secret/data/{namespace}/*" {{\n'
                             '  capabilities = ["read"]\n}\n')
    vault.write_kubernetes_role(name, "vault-reader", namespace, [name])
    provider: dict[str, Any] = {
        # The spec's in-cluster address; https with the CA where Vault speaks TLS only
        # (staging/prod), as the spec's own http:// store cannot log in there.
        "server": f"{'https' if vault.tls else 'http'}://vault.vault.svc.cluster.local:8200",
        "path": "secret", "version": "v2", "auth": {"kubernetes": {
            "mountPath": "kubernetes", "role": name,
            "serviceAccountRef": {"name": "vault-reader"}}}}
    if (ca := vault.ca_bundle()) is not None:
        provider["caBundle"] = base64.b64encode(ca).decode()
    eso.apply_object({
        "apiVersion": "external-secrets.io/v1beta1", "kind": "SecretStore",
        "metadata": {"name": "vault"}, "spec": {"provider": {"vault": provider}},
    }, namespace)
    return {"store": "vault", "prefix": namespace, "role": name, "policy": name}


def set_store_access(vault: VaultAdmin, store: dict[str, str], allowed: bool) -> None:
    """Grant (the store's own paths) or revoke (nothing readable) a test store's policy —
    spec troubleshooting #2, "policy"."""
    path = f"secret/data/{store['prefix']}/*" if allowed else "secret/data/nothing/*"
    vault.write_policy(store["policy"], f'path "{path}" {{\n  capabilities = ["read"]\n}}\n')


class ExternalSecretsClient:
    """The ESO side of a scenario, bound to one environment."""

    def __init__(self, env: ClusterView, kube: KubeClient) -> None:
        self.env = env
        self.kube = kube
        self.dyn = dynamic_client(kube.api_client)

    # ---- applying ------------------------------------------------------------------------
    def apply(self, path: Path | str, namespace: str | None = None,
              mutate: Callable[[dict], None] | None = None) -> list[manifests.Document]:
        """Apply a fixture file (validated, service-mapped), optionally into a namespace."""
        docs = manifests.load([Path(path)])
        for d in docs:
            if namespace and d.kind not in ("ClusterSecretStore", "Namespace"):
                d.obj.setdefault("metadata", {})["namespace"] = namespace
            if mutate:
                mutate(d.obj)
        manifests.validate(docs, self.dyn)
        local = manifests.rewrite(docs, self.env.service_map())
        manifests.apply(local, self.dyn)
        return local

    def apply_object(self, obj: dict, namespace: str | None) -> None:
        """Apply one object (into `namespace`, unless None: cluster-scoped)."""
        body = copy.deepcopy(obj)
        if namespace:
            body.setdefault("metadata", {})["namespace"] = namespace
        doc = manifests.Document("<test>", 1, body)
        manifests.validate([doc], self.dyn)
        manifests.apply(manifests.rewrite([doc], self.env.service_map()), self.dyn)

    # ---- reading -------------------------------------------------------------------------
    def get(self, namespace: str, name: str, version: str = "v1beta1") -> dict[str, Any]:
        return self.kube.get_custom(GROUP, version, namespace, "externalsecrets", name)

    def condition(self, namespace: str, name: str) -> dict | None:
        conds = self.get(namespace, name).get("status", {}).get("conditions", [])
        ready = [c for c in conds if c.get("type") == "Ready"]
        return ready[0] if ready else None

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            sec = self.kube.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return decoded(sec)

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return (self.secret_data(namespace, name) or {}).get(key)

    # ---- waiting -------------------------------------------------------------------------
    def wait_synced(self, namespace: str, name: str, timeout: float = 30) -> dict:
        """Ready=True/SecretSynced; a SecretSyncedError is not hopeless at once (ESO
        retries), but its message is what the timeout reports."""

        def synced() -> dict:
            cond = self.condition(namespace, name)
            if cond and cond.get("status") == "True" and cond.get("reason") == "SecretSynced":
                return cond
            raise AssertionError(f"Ready condition is {cond}")

        return eventually(synced, timeout=timeout,
                          description=f"ExternalSecret {namespace}/{name} SecretSynced")

    def wait_error(self, namespace: str, name: str, timeout: float = 30) -> dict:
        def failed() -> dict:
            cond = self.condition(namespace, name)
            if cond and cond.get("status") == "False":
                return cond
            raise AssertionError(f"Ready condition is {cond}")

        return eventually(failed, timeout=timeout,
                          description=f"ExternalSecret {namespace}/{name} reports an error")

    def wait_value(self, namespace: str, name: str, key: str, expected: str,
                   timeout: float = 30) -> float:
        """Seconds until Secret[key] == expected, seen as the change lands (a watch)."""
        t0 = time.monotonic()

        def arrived(secret: client.V1Secret | None) -> str | None:
            if secret is None:
                return f"Secret {name} does not exist"
            if decoded(secret).get(key) == expected:
                return None
            return f"{name}[{key}] not the expected value yet"

        try:
            self.kube.watch_secret(namespace, name, arrived, timeout,
                                   description=f"Secret {namespace}/{name}[{key}] updated")
        except WaitTimeout as exc:
            raise WaitTimeout(redact(f"{exc}; {self._why(namespace, name)}")) from None
        return time.monotonic() - t0

    def _why(self, namespace: str, name: str) -> str:
        """What ESO says of the ExternalSecret `name` (of the same name as its Secret, as
        the suites make them): its Ready condition and events — the reason a Secret did
        not arrive (a Vault error, a store not ready, ESO's retry back-off)."""
        try:
            cond = self.condition(namespace, name)
            events = self.events(namespace, name)
        except client.ApiException as exc:
            return f"the ExternalSecret could not be read ({exc.status} {exc.reason})"
        said = f"{cond.get('status')}/{cond.get('reason')}: {cond.get('message')}" \
            if cond else "none"
        return f"ExternalSecret Ready condition {said}; events: {events[-8:] or 'none'}"

    # ---- the runbook ---------------------------------------------------------------------
    def force_sync(self, namespace: str, name: str) -> None:
        """`kubectl annotate externalsecret <name> -n <ns> force-sync="$(date +%s)"`."""
        self.kube.kubectl("annotate", "externalsecret", name, "-n", namespace,
                          f"force-sync={time.time_ns()}", "--overwrite")

    def events(self, namespace: str, name: str) -> list[str]:
        evs = self.kube.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}").items
        return [f"{e.reason}: {e.message}" for e in evs]

    def metric(self, metric: str, /, **labels: str) -> float:
        """Sum of an ESO metric's samples matching labels (from its /metrics)."""
        from harness.runtime.probes import http_get

        addresses = self.env.eso_metrics_addresses
        if not addresses:
            raise HarnessError("this environment gives no ESO metrics address (no ESO "
                               "controller, or none configured for the backend)")
        total = 0.0
        for address in addresses:
            try:
                status, body = http_get(address)
            except OSError:
                continue  # a replica that is down (killed by a fault) has no metrics
            if status != 200:
                raise Hopeless(f"ESO metrics endpoint {address} answered {status}")
            for line in body.decode().splitlines():
                if not line.startswith(metric + "{") and not line.startswith(metric + " "):
                    continue
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
        return total


def decoded(secret: client.V1Secret) -> dict[str, str]:
    """A Secret's data, base64-decoded."""
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
