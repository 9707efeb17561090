"""The platform's Helm releases and their values, per profile — what kind and pods both
install. Versions are the local toolchain's; a chart whose default differs is pinned
through values (so it still renders its own image repository)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

OPENBAO_IMAGE = ("quay.io/openbao/openbao", "2.7.2")
ESO_VERSION = "v0.16.2"
ARGOCD_VERSION = "v3.2.11"
REDIS_TAG = "7.0.15"
PROMETHEUS_VERSION = "v2.42.0"
ALERTMANAGER_VERSION = "v0.25.0"

# Where the pod faults act on a chart-installed platform (kind, pods).
POD_FAULTS = {
    "vault_pods": {"namespace": "vault",
                   "selector": "app.kubernetes.io/name=vault,component=server"},
    "eso_deployment": {"namespace": "external-secrets", "name": "external-secrets"}}

# The TLS material of HA Vault (staging, prod): a Secret the harness writes before the
# chart, mounted by the chart's extraVolumes at /vault/userconfig/<name>/.
VAULT_TLS_SECRET = "vault-tls"
VAULT_TLS_DIR = f"/vault/userconfig/{VAULT_TLS_SECRET}"
VAULT_TLS_NAMES = ("vault", "vault.vault", "vault.vault.svc", "vault.vault.svc.cluster.local",
                   "vault-active", "vault-active.vault.svc",
                   "vault-active.vault.svc.cluster.local", "vault-internal",
                   "*.vault-internal", "*.vault-internal.vault.svc.cluster.local",
                   "localhost", "127.0.0.1")

_RAFT_CONFIG = """\
ui = false
listener "tcp" {{
  address         = "[::]:8200"
  cluster_address = "[::]:8201"
{listener_tls}
}}
storage "raft" {{
  path                   = "/vault/data"
  performance_multiplier = 1
{joins}
}}
service_registration "kubernetes" {{}}
telemetry {{
  prometheus_retention_time = "30s"
  disable_hostname          = true
}}
"""


def raft_config(tls: bool, replicas: int = 3) -> str:
    """The raft server's HCL: every Pod joins the others by their stable DNS names
    (vault-N.vault-internal), over TLS with the harness's CA when `tls`."""
    scheme = "https" if tls else "http"
    joins = "\n".join(
        "  retry_join {\n"
        f'    leader_api_addr = "{scheme}://vault-{i}.vault-internal:8200"\n'
        + (f'    leader_ca_cert_file = "{VAULT_TLS_DIR}/ca.crt"\n' if tls else "")
        + "  }" for i in range(replicas))
    listener_tls = (f'  tls_cert_file = "{VAULT_TLS_DIR}/tls.crt"\n'
                    f'  tls_key_file  = "{VAULT_TLS_DIR}/tls.key"' if tls
                    else "  tls_disable     = 1")
    return _RAFT_CONFIG.format(listener_tls=listener_tls, joins=joins)


RAFT_CONFIG = raft_config(tls=False)


@dataclass
class Chart:
    """One Helm release: its chart archive in the toolchain, the subcharts it declares
    (archives we have, or None: only allowed while the values disable it), values."""

    release: str
    namespace: str
    tool: str
    archive: str
    subcharts: dict[str, tuple[str, str] | None]
    values: dict[str, Any]
    post_render: tuple[str, ...] = ()
    wait: bool = True


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else copy.deepcopy(v)
    return out


def lookup(values: dict[str, Any], dotted: str) -> Any:
    cur: Any = values
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def vault_values(customer: dict[str, Any] | None = None,
                 profile: str = "staging") -> dict[str, Any]:
    """Vault chart values, OpenBao at the toolchain's version. dev: one dev-mode Pod (the
    spec's dev profile); staging and prod: 3 raft Pods with TLS (the production shape),
    initialised and unsealed by the harness. The customer's own Helm values, when given,
    win for the server configuration; the image stays pinned."""
    image = {"repository": OPENBAO_IMAGE[0], "tag": OPENBAO_IMAGE[1]}
    base: dict[str, Any] = {"global": {"enabled": True}, "injector": {"enabled": False},
                            "server": {"image": image}}
    if profile == "dev" and not customer:
        base["server"]["dev"] = {"enabled": True, "devRootToken": "(set at install)"}
    else:
        tls = profile != "dev"
        base["global"]["tlsDisable"] = not tls
        base["server"].update({
            "ha": {"enabled": True, "replicas": 3,
                   "raft": {"enabled": True, "setNodeId": True,
                            "config": raft_config(tls)}},
            "dataStorage": {"enabled": True, "size": "1Gi"}})
        if tls:
            base["server"]["extraVolumes"] = [{"type": "secret", "name": VAULT_TLS_SECRET}]
            base["server"]["extraEnvironmentVars"] = {
                "VAULT_CACERT": f"{VAULT_TLS_DIR}/ca.crt"}
    merged = deep_merge(base, customer or {})
    merged["server"]["image"] = image
    return merged


def eso_values() -> dict[str, Any]:
    tag = {"tag": ESO_VERSION}
    return {"installCRDs": False,  # the toolchain's bundle at the binary's version
            "image": tag, "webhook": {"image": tag}, "certController": {"image": tag},
            "metrics": {"service": {"enabled": True}},
            "bitwarden-sdk-server": {"enabled": False}}


def monitoring_values() -> dict[str, Any]:
    """The prometheus-community `prometheus` chart: the server and its Alertmanager
    subchart at the toolchain's versions, scraping through Kubernetes service discovery
    (Services annotated `prometheus.io/scrape`); no exporters, no reloader sidecars."""
    return {
        "server": {"image": {"tag": PROMETHEUS_VERSION},
                   "persistentVolume": {"enabled": False},
                   "global": {"scrape_interval": "5s", "evaluation_interval": "5s"}},
        "configmapReload": {"prometheus": {"enabled": False}},
        # Debian's Alertmanager has no web UI: `/` is 404, so the chart's probes of `/`
        # would restart it forever; its health endpoints instead.
        "alertmanager": {"enabled": True, "image": {"tag": ALERTMANAGER_VERSION},
                         "persistence": {"enabled": False},
                         "configmapReload": {"enabled": False},
                         "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "http"}},
                         "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "http"}}},
        "kube-state-metrics": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
    }


def argocd_values() -> dict[str, Any]:
    return {"global": {"image": {"tag": ARGOCD_VERSION}},
            "crds": {"install": False},  # the toolchain's CRDs at the binary's version
            "dex": {"enabled": False}, "notifications": {"enabled": False},
            "applicationSet": {"enabled": False},
            "redis": {"image": {"tag": REDIS_TAG}},
            "redis-ha": {"enabled": False}}


def charts(vault_overrides: dict[str, Any] | None = None,
           profile: str = "staging") -> list[Chart]:
    """Every release, in install order."""
    return [
        # Vault Pods are Ready only once unsealed: no --wait; init_vault follows.
        Chart("vault", "vault", "chart-vault", "vault.tgz", {},
              vault_values(vault_overrides, profile), post_render=("openbao",), wait=False),
        Chart("external-secrets", "external-secrets", "chart-external-secrets",
              "external-secrets.tgz", {"bitwarden-sdk-server": None}, eso_values()),
        Chart("prometheus", "monitoring", "chart-prometheus", "prometheus.tgz", {
            "alertmanager": ("chart-prometheus", "alertmanager.tgz"),
            "kube-state-metrics": None, "prometheus-node-exporter": None,
            "prometheus-pushgateway": None}, monitoring_values()),
        Chart("argocd", "argocd", "chart-argo-cd", "argo-cd.tgz", {"redis-ha": None},
              argocd_values()),
    ]


def images_of(manifests: list[dict[str, Any]]) -> set[str]:
    """Every container image the rendered objects would run."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for c in node.get(key) or []:
                    if isinstance(c, dict) and c.get("image"):
                        found.add(str(c["image"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for m in manifests:
        walk(m)
    return found
