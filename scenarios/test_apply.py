"""`harness apply` on bad input: a specific error naming the file/object, nothing applied."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: should-not-exist\n"


def apply(platform, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.state.root),
           "HERACLES_REGISTRY_DIR": str(platform.settings.registry_dir)}
    return subprocess.run([sys.executable, "-m", "harness.cli", "apply", *map(str, paths)],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("body,message", [
    ("apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
     "Widget/w (BAD:1): the cluster does not serve kind Widget in v1"),
    ("apiVersion: policy.heracles.example/v1\nkind: Guard\nmetadata:\n  name: g\n",
     "the CRD for group policy.heracles.example is not installed"),
    ("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n"
     "  - port: 99999\n",
     "Service/s (BAD:1): rejected by the API server"),
    ("apiVersion: external-secrets.io/v9\nkind: ExternalSecret\nmetadata:\n  name: e\n",
     "does not serve kind ExternalSecret in external-secrets.io/v9"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: nowhere\n",
     "namespace 'nowhere' does not exist"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "missing metadata.name"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n",
     "BAD:5: YAML error: did not find expected ',' or ']'"),
])
def test_bad_input_names_the_object_and_applies_nothing(platform, kube, tmp_path, body,
                                                        message):
    good = tmp_path / "a-good.yaml"
    good.write_text(GOOD_CM)
    bad = tmp_path / "b-bad.yaml"
    bad.write_text(body)
    res = apply(platform, good, bad)
    assert res.returncode == 2
    assert message.replace("BAD", str(bad)) in res.stderr
    assert "Traceback" not in res.stderr
    names = [c.metadata.name for c in kube.core.list_namespaced_config_map("default").items]
    assert "should-not-exist" not in names


def test_apply_rewrites_the_vault_address_and_logs_it(platform, kube, eso):
    res = apply(platform, platform.settings.fixtures_dir / "gitops" / "secrets" /
                "cluster-secret-store.yaml")
    assert res.returncode == 0, res.stderr
    vault = platform.service_map()["http://vault.vault.svc.cluster.local:8200"]
    assert f"http://vault.vault.svc.cluster.local:8200 -> {vault} (service map)" in res.stderr
    css = kube.custom.get_cluster_custom_object(
        "external-secrets.io", "v1beta1", "clustersecretstores", "vault-cluster-backend")
    assert css["spec"]["provider"]["vault"]["server"] == vault


def harness_cli(platform, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.state.root),
           "HERACLES_REGISTRY_DIR": str(platform.settings.registry_dir)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_harness_git_clones_the_platform_repo_with_its_branches(platform, tmp_path):
    url = harness_cli(platform, "git", "url").stdout.strip()
    assert url == platform.git.url() and url.startswith("http://127.0.0.1:")
    res = harness_cli(platform, "git", "clone", str(tmp_path / "ws"), "--branch", "staging")
    assert res.returncode == 0, res.stderr
    branches = subprocess.run(["git", "-C", str(tmp_path / "ws"), "ls-remote", "--heads",
                               "origin"], capture_output=True, text=True, check=True).stdout
    assert {b.rsplit("/", 1)[1] for b in branches.split()[1::2]} == {"dev", "staging", "main"}
    app = (tmp_path / "ws" / "argocd" / "staging" / "app-of-apps.yaml").read_text()
    assert url in app and "targetRevision: staging" in app  # service map applied
    assert "https://kubernetes.default.svc" in app  # Argo CD's destination kept
    again = harness_cli(platform, "git", "clone", str(tmp_path / "ws"))
    assert again.returncode == 2 and "exists and is not empty" in again.stderr


def test_argocd_metrics_are_scraped_by_prometheus(platform, prometheus):
    from harness import eventually

    def both_up():
        up = [r for r in prometheus.query('up{job="argocd"}') if r["value"][1] == "1"]
        return len(up) == 2 and up  # application-controller (via its bridge) + repo-server

    up = eventually(both_up, timeout=60, description="both Argo CD targets up")
    assert {r["metric"]["instance"] for r in up} == {
        u.split("://")[1].split("/")[0] for name, u in platform.component("argocd")
        .endpoints().items() if name.endswith("-metrics")}  # argocd-server is no target
