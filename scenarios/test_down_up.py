"""An environment keeps working across `harness down` -> `harness up` (issue 13): the
GitOps wiring survives a Git port taken by something else meanwhile (the seeded repo and
the Applications are re-pointed), and the dev Vault keeps what was written to it
(policies, roles, KV) like etcd keeps the Kubernetes objects."""

from __future__ import annotations

import socket

import pytest
from kubernetes import client

from harness.testing import (
    Applications,
    EnvironmentFactory,
    ExternalSecretsClient,
    LocalEnvironment,
    make_test_store,
)

pytestmark = pytest.mark.slow
COMPONENTS = ("etcd", "kube", "vault", "eso", "git", "argocd")
TREE = ["platform", "observability", "secrets", "workload"]


def _external_secret(name: str, key: str) -> dict[str, object]:
    return {"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": name},
            "spec": {"refreshInterval": "1h", "target": {"name": name},
                     "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
                     "data": [{"secretKey": "password",
                               "remoteRef": {"key": key, "property": "password"}}]}}


def _every_external_secret_syncs(eso: ExternalSecretsClient) -> list[str]:
    """Force-sync every ExternalSecret of the cluster and wait for each: the names."""
    items = eso.kube.custom.list_cluster_custom_object(
        "external-secrets.io", "v1beta1", "externalsecrets")["items"]
    names = []
    for es in items:
        ns, name = es["metadata"]["namespace"], es["metadata"]["name"]
        eso.force_sync(ns, name)
        eso.wait_synced(ns, name, timeout=90)
        names.append(f"{ns}/{name}")
    return names


def test_down_then_up_with_the_git_port_taken_keeps_gitops_and_vault_data(
        environment_factory: EnvironmentFactory) -> None:
    settings = environment_factory.settings("down-up", profile="dev", components=COMPONENTS)
    first = LocalEnvironment(settings)
    second = LocalEnvironment(settings)
    try:
        first.up(mode="session")
        first.install_crds("prometheus-operator")
        kube = first.kube_client()
        eso = ExternalSecretsClient(first, kube)
        eso.apply(settings.fixtures_dir / "gitops" / "argocd" / "dev" / "app-of-apps.yaml")
        Applications(kube).wait_all(TREE, timeout=240)

        # What the harness does not write itself: a custom key, policy and role.
        kube.core.create_namespace(client.V1Namespace(
            metadata=client.V1ObjectMeta(name="custom")))
        store = make_test_store(first.vault, eso, "custom")
        first.vault.kv_put("custom/db", password="kept-across-down-up")
        eso.apply_object(_external_secret("db", "custom/db"), "custom")
        eso.wait_value("custom", "db", "password", "kept-across-down-up", timeout=60)

        old_git = first.record.ports["git.http"]
        old_vault = first.record.ports["vault.api"]
        first.down()
        with socket.socket() as squatter:  # something else takes the Git port meanwhile
            # (TIME_WAIT from the stopped server must not stop the squatter either)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", old_git))
            squatter.listen()
            seen: list[str] = []
            second.up(mode="session", events=seen.append)

        assert second.record.ports["git.http"] != old_git
        assert second.record.ports["vault.api"] == old_vault  # its 2-port block is kept
        assert any(f"port {old_git} (git.http) is taken" in m for m in seen), seen
        assert any("re-pointing" in m for m in seen), seen

        kube = second.kube_client()
        apps = Applications(kube)
        apps.wait_all(TREE, timeout=240)
        new_url = second.git.url()
        for name in TREE:
            assert apps.get(name)["spec"]["source"]["repoURL"] == new_url, name

        # Vault kept what was written: the policy and role behind the custom store too.
        assert second.vault.kv_get("custom/db") == {"password": "kept-across-down-up"}
        assert store["policy"] in second.vault.client().sys.list_policies()["data"]["policies"]
        eso = ExternalSecretsClient(second, kube)
        synced = _every_external_secret_syncs(eso)
        assert "custom/db" in synced and "app/postgres-credentials" in synced
        assert eso.secret_value("custom", "db", "password") == "kept-across-down-up"
    finally:
        second.down()
        first.down()
