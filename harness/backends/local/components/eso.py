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
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.local.components.base import Component
from harness.backends.local.components.kube import Kube, kubeconfig_token_yaml
from harness.backends.local.components.vault import Vault
from harness.clients import manifests
from harness.errors import HarnessError
from harness.runtime.namespaces import in_private_namespaces
from harness.runtime.pki import write_private
from harness.runtime.probes import hostport, http_ok
from harness.runtime.process import ProcessSpec
from harness.runtime.redact import REDACTOR
from harness.vault_config.eso_grants import recorded_grants, with_read_grants
from harness.wait import eventually

NAMESPACE = "external-secrets"
if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SERVICE_ACCOUNT = "external-secrets"
VAULT_ROLE = "external-secrets"
VAULT_POLICY = "external-secrets"


def packaged_manifest(name: str) -> Path:
    package = resources.files("harness.backends.local.components")
    return Path(str(package.joinpath("manifests", name)))


LEASE = "external-secrets-controller"  # controller-runtime LeaderElectionID in ESO's root.go
IN_CLUSTER_NS = "/var/run/secrets/kubernetes.io/serviceaccount"


class ExternalSecretsOperator(Component):
    name = "eso"
    requires = ("kube", "vault")
    port_names = ("eso.metrics",)
    toolchain = ("external-secrets",)

    @property
    def replicas(self) -> int:
        """dev: one controller, as the spec's "single replicas". staging/prod: two with
        leader election (a Lease in external-secrets), as an HA chart install runs."""
        return 1 if self.ctx.settings.profile == "dev" else 2

    @property
    def replica_names(self) -> list[str]:
        return ["external-secrets", *(f"external-secrets-{i}" for i in range(1, self.replicas))]

    def _metrics_port_key(self, index: int) -> str:
        return "eso.metrics" if index == 0 else f"eso.metrics-{index}"

    def wanted_ports(self) -> dict[str, int]:
        return {self._metrics_port_key(i): 1 for i in range(self.replicas)}

    @property
    def metrics_addresses(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ctx.port(self._metrics_port_key(i))}/metrics"
                for i in range(self.replicas)]

    @property
    def address(self) -> str:
        return self.metrics_addresses[0]

    def leader(self) -> str | None:
        """The replica that leads now: running, and whose log's last leader-election
        line is client-go's "successfully acquired lease" (a standby's is "attempting
        to acquire leader lease"). Both replicas share a hostname, so the Lease's
        holderIdentity alone cannot tell them apart."""
        for proc in self.processes():
            if not proc.running() or not proc.spec.log_path.exists():
                continue
            text = proc.spec.log_path.read_text(errors="replace")
            text = text[text.rfind(f" start {proc.name}\n") + 1:]  # this run of it only
            acquired = text.rfind(f"successfully acquired lease {NAMESPACE}/{LEASE}")
            if acquired > text.rfind("attempting to acquire leader lease"):
                return proc.name
        return None

    def lease_holder(self) -> str | None:
        """holderIdentity of the Lease (None when there is none)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        kube = self.ctx.require(Kube)
        try:
            lease = client.CoordinationV1Api(kube.api_client()).read_namespaced_lease(
                LEASE, NAMESPACE)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return (lease.spec.holder_identity if lease.spec else None) or None

    @property
    def kubeconfig(self) -> Path:
        return self.ctx.state.root / "kube" / "external-secrets.kubeconfig"

    def endpoints(self) -> dict[str, str]:
        return {f"eso-metrics{'' if i == 0 else f'-{i}'}": a
                for i, a in enumerate(self.metrics_addresses)}

    def scrape_jobs(self) -> list[dict[str, Any]]:
        return [{"job_name": "external-secrets", "static_configs": [
            {"targets": [hostport(a) for a in self.metrics_addresses]}]}]

    def crd_files(self) -> list[Path]:
        return [self.ctx.toolchain.file("external-secrets", "crds/bundle.yaml")]

    def install(self) -> None:
        kube, vault = self.ctx.require(Kube), self.ctx.require(Vault)
        from harness.clients.kube import dynamic_client

        api = kube.api_client()
        dyn = dynamic_client(api)
        manifests.ensure_crds(manifests.load_cached(self.crd_files(),
                                                    self.ctx.toolchain.parsed_dir), dyn)
        docs = manifests.load([packaged_manifest("external-secrets.yaml"),
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
        # with the paths `harness eso grant` added to this environment earlier
        hcl, _ = with_read_grants(policy.read_text(),
                                  recorded_grants(self.ctx.settings.state_dir))
        vault.write_policy(VAULT_POLICY, hcl)
        vault.write_kubernetes_role(VAULT_ROLE, SERVICE_ACCOUNT, NAMESPACE, [VAULT_POLICY])

    @staticmethod
    def _token(api: ApiClient, namespace: str, secret: str, timeout: float = 30) -> str:
        """The JWT the token controller writes into a service-account-token Secret."""
        from kubernetes import client

        core = client.CoreV1Api(api)

        def token() -> str:
            data = core.read_namespaced_secret(secret, namespace).data or {}
            if "token" not in data:
                raise AssertionError("no token in it yet")
            value = base64.b64decode(data["token"]).decode()
            REDACTOR.add(value)
            return value

        return eventually(token, timeout=timeout, interval=0.1, error=HarnessError,
                          retry_on=(AssertionError,),
                          description=f"Secret {namespace}/{secret} gets its token "
                                      "(is kube-controller-manager running?)")

    def process_specs(self) -> list[ProcessSpec]:
        elect = self.replicas > 1
        specs = []
        for i, name in enumerate(self.replica_names):
            argv = [self.bin("external-secrets", "external-secrets"),
                    f"--metrics-addr=127.0.0.1:{self.ctx.port(self._metrics_port_key(i))}",
                    f"--enable-leader-election={'true' if elect else 'false'}",
                    "--zap-time-encoding=iso8601",
                    "--concurrent=2"]
            if elect:
                argv = self._in_cluster_namespace(argv)
            specs.append(self.spec(name, argv, http_ok(self.metrics_addresses[i]),
                                   env={"KUBECONFIG": str(self.kubeconfig)}))
        return specs

    def _in_cluster_namespace(self, argv: list[str]) -> list[str]:
        """ESO has no leader-election-namespace flag: controller-runtime reads the pod's
        namespace from /var/run/secrets/kubernetes.io/serviceaccount/namespace and refuses
        to elect without it. The controller gets that file in a private mount namespace
        (`unshare --mount --map-root-user`, no privileges needed): a tmpfs over /run
        holding only the namespace file — nothing on the machine is touched."""
        for path in (self.kubeconfig, self.ctx.state.root):
            if str(path.resolve()).startswith(("/run/", "/var/run/")):
                raise HarnessError(f"state dir {self.ctx.state.root} is under /run, which "
                                   "ESO's private mount namespace hides; choose another")
        setup = ("mount -t tmpfs -o size=1m,mode=0755 tmpfs /run && "
                 f"mkdir -p {IN_CLUSTER_NS} && printf %s {NAMESPACE} > {IN_CLUSTER_NS}/namespace")
        return in_private_namespaces(["mount"], setup, argv,
                                     "ESO leader election (its in-cluster namespace file)")
