"""The shared chart install's pure parts: the post-renderer's transforms, Prometheus's
values (Kubernetes SD jobs, time-scaled rules, the receiver), and the Git server's
credentials (real `git http-backend` behind it)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness.backends.install import monitoring, postrender
from harness.runtime.pki import write_private
from harness.settings import Settings

STATEFULSET = {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [{
    "name": "vault", "args": ["/usr/local/bin/docker-entrypoint.sh vault server -dev"],
    "readinessProbe": {"exec": {"command": ["/bin/sh", "-ec", "vault status -tls-skip-verify"]}},
    "env": [{"name": "VAULT_ADDR", "value": "https://127.0.0.1:8200"},
            {"name": "VAULT_K8S_POD_NAME", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.name"}}}]}]}}}}


def test_openbao_renames_the_commands_and_mirrors_every_vault_variable() -> None:
    out = postrender.openbao(STATEFULSET)
    [c] = out["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["/usr/local/bin/docker-entrypoint.sh bao server -dev"]
    assert "bao status" in c["readinessProbe"]["exec"]["command"][-1]
    env = {e["name"]: e for e in c["env"]}
    assert env["BAO_ADDR"]["value"] == "https://127.0.0.1:8200"
    assert env["BAO_K8S_POD_NAME"]["valueFrom"] == env["VAULT_K8S_POD_NAME"]["valueFrom"]


def test_openbao_services_select_by_openbaos_registration_labels() -> None:
    active = {"kind": "Service", "metadata": {"name": "vault-active"}, "spec": {"selector": {
        "app.kubernetes.io/name": "vault", "component": "server", "vault-active": "true"}}}
    assert postrender.openbao(active)["spec"]["selector"] == {
        "app.kubernetes.io/name": "vault", "component": "server", "openbao-active": "true"}


def test_pin_puts_every_workload_on_the_real_node_once() -> None:
    deploy = {"kind": "Deployment", "spec": {"template": {"spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"}}}}}
    spec = postrender.pin(postrender.pin(deploy))["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", "heracles.dev/node": "real"}
    assert [t["key"] for t in spec["tolerations"]] == ["heracles.dev/real-node"]
    service = {"kind": "Service", "spec": {}}
    assert postrender.pin(service) == service


def test_postrender_refuses_an_unknown_transform() -> None:
    run = subprocess.run([sys.executable, "-m", "harness.backends.install.postrender",
                          "openbao,nope"], input="", capture_output=True, text=True)
    assert run.returncode == 2 and "usage" in run.stderr


def test_prometheus_values_discover_vault_and_eso_and_scale_the_spec_rules() -> None:
    fixtures = Settings().fixtures_dir
    values = monitoring.values(rules=[fixtures / "observability"], time_scale=60,
                               receiver_url="http://alert-receiver.heracles.svc/alerts",
                               tls=True)
    jobs = {j["job_name"]: j for j in
            values["serverFiles"]["prometheus.yml"]["scrape_configs"]}
    assert set(jobs) == {"vault", "external-secrets"}
    assert jobs["vault"]["scheme"] == "https"
    assert jobs["vault"]["kubernetes_sd_configs"] == [
        {"role": "endpoints", "namespaces": {"names": ["vault"]}}]
    assert jobs["vault"]["authorization"]["credentials_file"].startswith("/etc/")
    rules = {r["alert"]: r for g in values["serverFiles"]["alerting_rules.yml"]["groups"]
             for r in g["rules"]}
    assert rules["VaultDown"]["for"] == "5s"  # 5m / 60
    [receiver] = values["alertmanager"]["config"]["receivers"]
    assert receiver["webhook_configs"][0]["url"].endswith("/alerts")
    quiet = monitoring.values(rules=[], time_scale=1, receiver_url=None, tls=False)
    assert quiet["alertmanager"]["config"]["receivers"] == [{"name": "harness"}]
    assert yaml.safe_dump(values)  # what helm gets: plain YAML


def test_the_git_server_with_credentials_refuses_everyone_else(tmp_path: Path,
                                                              free_port: int) -> None:
    repos = tmp_path / "repos"
    subprocess.run(["git", "init", "-q", "--bare", str(repos / "platform.git")], check=True)
    creds = tmp_path / "credentials"
    write_private(creds, b"heracles:s3cret-pass")
    port = free_port
    server = subprocess.Popen([sys.executable, "-m", "harness.daemons.gitserver",
                               f"--root={repos}", f"--port={port}", "--git=git",
                               f"--auth-file={creds}"], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/platform.git/info/refs?service=git-upload-pack"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for header in (None, "Basic " + base64.b64encode(b"heracles:wrong").decode()):
            req = urllib.request.Request(url, headers={"Authorization": header} if header
                                         else {})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=5)
            assert refused.value.code == 401
        good = "Basic " + base64.b64encode(b"heracles:s3cret-pass").decode()
        with urllib.request.urlopen(urllib.request.Request(
                url, headers={"Authorization": good}), timeout=5) as ok:
            assert ok.status == 200
            assert b"git-upload-pack" in ok.read()
    finally:
        server.terminate()
        server.wait(10)
