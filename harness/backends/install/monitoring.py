"""Prometheus and Alertmanager from the prometheus-community `prometheus` chart, set up
the way the local backend sets up its own processes: the spec's rules time-scaled, Vault
scraped as job="vault" with a token that may read sys/metrics and nothing else, ESO as
job="external-secrets" — both found through Kubernetes service discovery (role
endpoints), so a Pod that comes or goes is followed — and every notification sent to
the harness's webhook receiver, published in-cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.backends.install.charts import VAULT_TLS_SECRET
from harness.rules import (
    BASE_SCRAPE,
    format_duration,
    load_rule_documents,
    scaled_groups,
)

METRICS_SECRET = "vault-metrics-token"
METRICS_POLICY = "prometheus-metrics"
BASE_GROUP_WAIT = 30.0  # Alertmanager's default group_wait


def scaled(seconds: float, factor: float, floor: float = 1.0) -> str:
    return format_duration(max(floor, seconds / factor))


def _keep(label: str, regex: str) -> dict[str, Any]:
    return {"source_labels": [label], "regex": regex, "action": "keep"}


def scrape_configs(tls: bool) -> list[dict[str, Any]]:
    """job="vault" (every server Pod through the headless vault-internal Service, sealed
    ones included) and job="external-secrets" (the controller's metrics Service).

    Vault's metrics need the token (no `unauthenticated_metrics_access`): a sealed Pod
    answers 503, so it is `up == 0` and VaultDown fires — with unauthenticated access a
    sealed Vault still serves its metrics and the spec's alert never would. A deleted
    Pod is no target at all (Kubernetes SD follows it away): `up == 0` cannot see it."""
    pod_instance = {"source_labels": ["__meta_kubernetes_pod_name"],
                    "target_label": "instance"}
    vault: dict[str, Any] = {
        "job_name": "vault", "metrics_path": "/v1/sys/metrics",
        "params": {"format": ["prometheus"]},
        "authorization": {"credentials_file": f"/etc/{METRICS_SECRET}/token"},
        "kubernetes_sd_configs": [{"role": "endpoints",
                                   "namespaces": {"names": ["vault"]}}],
        "relabel_configs": [_keep("__meta_kubernetes_service_name", "vault-internal"),
                            # the API port: "http", or "https" once TLS is on
                            _keep("__meta_kubernetes_endpoint_port_name", "https?"),
                            pod_instance]}
    if tls:
        vault["scheme"] = "https"
        # targets are Pod IPs, which the certificate does not name: check it against a
        # name it does (every Pod serves the same certificate)
        vault["tls_config"] = {"ca_file": f"/etc/{VAULT_TLS_SECRET}/ca.crt",
                               "server_name": "vault.vault.svc"}
    eso = {"job_name": "external-secrets",
           "kubernetes_sd_configs": [{"role": "endpoints",
                                      "namespaces": {"names": ["external-secrets"]}}],
           "relabel_configs": [_keep("__meta_kubernetes_service_name",
                                     "external-secrets-metrics"), pod_instance]}
    return [vault, eso]


def rule_files(sources: list[Path], factor: float) -> dict[str, Any]:
    """The chart's serverFiles: every rule group of `sources`, time-scaled by `factor`."""
    groups: list[dict[str, Any]] = []
    for _source, doc in load_rule_documents(sources):
        groups += scaled_groups(doc, factor)["groups"]
    return {"alerting_rules.yml": {"groups": groups}}


def values(*, rules: list[Path], time_scale: float, receiver_url: str | None,
           tls: bool) -> dict[str, Any]:
    """Values over the chart's defaults (charts.monitoring_values). Without a receiver
    the backend cannot host one: Alertmanager routes to a receiver that sends nothing."""
    interval = scaled(BASE_SCRAPE, time_scale)
    mounts = [{"name": METRICS_SECRET, "mountPath": f"/etc/{METRICS_SECRET}",
               "secretName": METRICS_SECRET, "readOnly": True}]
    if tls:
        mounts.append({"name": VAULT_TLS_SECRET, "mountPath": f"/etc/{VAULT_TLS_SECRET}",
                       "secretName": "vault-tls-ca", "readOnly": True})
    return {
        "server": {"global": {"scrape_interval": interval, "evaluation_interval": interval,
                              "scrape_timeout": scaled(10, time_scale, 0.8)},
                   "extraSecretMounts": mounts},
        # The chart's default jobs (annotation-based discovery, the apiserver, nodes)
        # replaced by ours: the list replaces the chart's, the rule_files stay.
        "serverFiles": {**rule_files(rules, time_scale),
                        "prometheus.yml": {"scrape_configs": scrape_configs(tls)}},
        "alertmanager": {"config": {
            "global": {},
            "route": {"receiver": "harness", "group_by": ["alertname"],
                      "group_wait": scaled(BASE_GROUP_WAIT, time_scale, 0.5),
                      "group_interval": scaled(300, time_scale),
                      "repeat_interval": "4h"},
            "receivers": [{"name": "harness", **({"webhook_configs": [
                {"url": receiver_url, "send_resolved": True}]} if receiver_url else {})}]}},
    }
