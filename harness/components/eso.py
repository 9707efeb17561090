"""External Secrets Operator v0.16.2: the controller as a local process.

What the Helm chart would create is applied first (CRDs from the module, server-side —
the bundle is too large for client-side apply; the controller's ServiceAccount and its
ClusterRole), and the controller runs with that ServiceAccount's token, so it has the
chart's Kubernetes permissions rather than cluster-admin. Vault's kubernetes auth is
configured here too, as the spec's runbook does it: it needs both Kubernetes and Vault.
There is no `--kubeconfig` flag: ESO reads KUBECONFIG.
"""

from __future__ import annotations

import base64
import time
from importlib import resources
from pathlib import Path

from harness import manifests
from harness.components.base import Component
from harness.components.kube import Kube, kubeconfig_token_yaml
from harness.components.vault import Vault
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import http_ok
from harness.runtime.redact import REDACTOR

NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
VAULT_ROLE = "external-secrets"
VAULT_POLICY = "external-secrets"


def packaged_manifest(name: str) -> Path:
    return Path(str(resources.files("harness.components").joinpath("manifests", name)))


class ExternalSecrets(Component):
    name = "eso"
    requires = ("kube", "vault")
    port_names = ("eso.metrics",)
    toolchain = ("external-secrets",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('eso.metrics')}/metrics"

    @property
    def kubeconfig(self) -> Path:
        return self.ctx.state.root / "kube" / "external-secrets.kubeconfig"

    def endpoints(self) -> dict[str, str]:
        return {"eso-metrics": self.address}

    def prepare(self) -> None:
        kube, vault = self.ctx.components["kube"], self.ctx.components["vault"]
        assert isinstance(kube, Kube) and isinstance(vault, Vault)
        from kubernetes.dynamic import DynamicClient

        api = kube.api_client()
        dyn = DynamicClient(api)
        crds = self.ctx.toolchain.file("external-secrets", "crds/bundle.yaml")
        docs = manifests.load([crds, packaged_manifest("external-secrets.yaml"),
                               packaged_manifest("vault-auth.yaml")])
        manifests.validate(docs, dyn)
        manifests.apply(docs, dyn)

        controller_token = self._token(api, NAMESPACE, "external-secrets-controller-token")
        write_private(self.kubeconfig, kubeconfig_token_yaml(
            kube.address, self.ctx.pki.ca_cert.read_bytes(), controller_token,
            SERVICE_ACCOUNT).encode())

        reviewer = self._token(api, "vault", "vault-auth-secret")
        vault.configure_kubernetes_auth(kube.address, self.ctx.pki.ca_cert.read_text(),
                                        reviewer)
        policy = self.ctx.settings.fixtures_dir / "vault" / "policies" / f"{VAULT_POLICY}.hcl"
        if not policy.exists():
            raise HarnessError(f"{policy}: ESO's Vault policy is missing")
        vault.write_policy(VAULT_POLICY, policy.read_text())
        vault.write_kubernetes_role(VAULT_ROLE, SERVICE_ACCOUNT, NAMESPACE, [VAULT_POLICY])

    @staticmethod
    def _token(api, namespace: str, secret: str, timeout: float = 30) -> str:
        """The JWT the token controller writes into a service-account-token Secret."""
        from kubernetes import client

        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        while True:
            data = core.read_namespaced_secret(secret, namespace).data or {}
            if "token" in data:
                token = base64.b64decode(data["token"]).decode()
                REDACTOR.add(token)
                return token
            if time.monotonic() > deadline:
                raise HarnessError(f"Secret {namespace}/{secret} got no token within "
                                   f"{timeout:.0f}s (is kube-controller-manager running?)")
            time.sleep(0.1)

    def process_specs(self):
        argv = [self.bin("external-secrets", "external-secrets"),
                f"--metrics-addr=127.0.0.1:{self.ctx.port('eso.metrics')}",
                "--enable-leader-election=false",
                "--zap-time-encoding=iso8601",
                "--concurrent=2"]
        return [self.spec("external-secrets", argv, http_ok(self.address),
                          env={"KUBECONFIG": str(self.kubeconfig)})]
