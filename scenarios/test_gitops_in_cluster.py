"""The spec's Argo CD steps with Argo CD running as Pods from its chart (the pods
backend): `argocd login` with the password from `argocd-initial-admin-secret` and
`argocd repo add --username --password` were done by the install, against a Git server
that refuses anonymous clients; here `kubectl apply -f .../app-of-apps.yaml` (the
harness's bootstrap), every Application Synced and Healthy, the ExternalSecrets it
deploys synced through the spec's store as written (`http://vault.vault.svc.cluster.
local:8200`, no service map), and the runbook's manual sync patch."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from harness import eventually
from harness.clients.argocd import Applications
from harness.gitops.deploy import bootstrap

pytestmark = [pytest.mark.portable, pytest.mark.needs("gitops", "in-cluster")]


@pytest.fixture(scope="module")
def booted(platform):
    if platform.settings.profile != "dev":
        pytest.skip("staging/prod Vault speaks TLS only and the spec's store says http:// "
                    "(README, \"What the harness found\"): its tree cannot be Healthy")
    return bootstrap(platform, timeout=300)


def test_the_git_server_refuses_anonymous_clients_and_argocd_has_the_credentials(platform):
    url = platform.git_url() + "/info/refs?service=git-upload-pack"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    repos = json.loads(platform.argocd("repo", "list", "-o", "json"))
    [repo] = [r for r in repos if r["repo"].endswith("/platform.git")]
    assert repo["repo"] == "http://git.heracles.svc.cluster.local/platform.git"
    assert repo["connectionState"]["status"] == "Successful", repo["connectionState"]


def test_the_app_of_apps_tree_is_synced_and_healthy(booted, kube):
    assert set(booted.applications) >= {"platform", "secrets", "observability", "workload"}
    listing = kube.kubectl("get", "applications", "-n", "argocd").stdout
    for name in booted.applications:
        row = next(line for line in listing.splitlines() if line.startswith(f"{name} "))
        assert row.split()[1:3] == ["Synced", "Healthy"], listing


def test_its_externalsecrets_sync_through_the_store_as_written(booted, kube, eso):
    store = json.loads(kube.kubectl("get", "clustersecretstore", "vault-cluster-backend",
                                    "-o", "json").stdout)
    assert store["spec"]["provider"]["vault"]["server"] == \
        "http://vault.vault.svc.cluster.local:8200"
    for name in ("redis-credentials", "harbor-credentials"):
        eso.wait_synced("app", name, timeout=120)
    secret = kube.core.read_namespaced_secret("redis-credentials", "app")
    assert base64.b64decode(secret.data["password"]).decode()  # a value, from Vault


def test_the_runbook_manual_sync_patch_runs_an_operation(booted, kube):
    apps = Applications(kube)
    kube.kubectl("patch", "application", "workload", "-n", "argocd", "-p",
                 '{"operation":{"sync":{}}}', "--type", "merge")
    apps.wait("workload", sync="Synced", health="Healthy", timeout=120)

    def settled() -> dict | None:
        """Synced and Healthy can show while the operation still runs (seen on kind)."""
        state = apps.state("workload")
        return state if state["operation"].get("phase") != "Running" else None

    state = eventually(settled, timeout=120, description="workload's sync operation ended")
    assert state["operation"].get("phase") in (None, "Succeeded"), state["operation"]
