"""Bad input at the command line: a clear, specific error, exit status 2, nothing started."""

import json
import os
import subprocess
import sys

import pytest


def harness(tmp_path, *args, env=None):
    full = {**os.environ, "HERACLES_STATE_DIR": str(tmp_path / "state"),
            "HERACLES_REGISTRY_DIR": str(tmp_path / "registry"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,message", [
    (["up", "--profile", "qa"], "Invalid value for '--profile': 'qa' is not one of"),
    (["up", "--components", "kube,vaultt"],
     "unknown component(s): vaultt; known: etcd, kube, node, vault, eso, alertmanager, "
     "prometheus"),
    (["up", "--bogus"], "No such option '--bogus'"),
    (["toolchain", "install", "--only", "kubectl"], "unknown toolchain component(s): kubectl"),
    (["drill", "run", "vault-restor"], "unknown drill 'vault-restor'; known: "
     "vault-leader-loss, vault-restore, eso-outage, cluster-state-restore"),
    (["apply"], "give manifest PATHS or --platform-repo PATH (one of them)"),
    (["drill", "run", "vault-restore", "--profile", "dev"],
     "drill 'vault-restore' needs profile staging or prod"),
])
def test_bad_input_is_named(tmp_path, args, message):
    res = harness(tmp_path, *args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "state" / "environment.json").exists()


def test_missing_binary_names_it_and_the_install_command(tmp_path):
    res = harness(tmp_path, "up", "--components", "kube",
                  env={"HERACLES_CACHE_DIR": str(tmp_path / "empty-cache")})
    assert res.returncode == 2
    assert "etcd v3.6.16 is missing (not built)" in res.stderr
    assert "kubernetes v1.34.4 is missing" in res.stderr
    assert "run: harness toolchain install --only etcd,kubernetes,kwok" in res.stderr
    assert not (tmp_path / "state" / "environment.json").exists()


def test_state_dir_from_an_incompatible_version_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "environment.json").write_text(json.dumps({"schema": 99, "status": "up"}))
    res = harness(tmp_path, "up")
    assert res.returncode == 2
    assert "incompatible heracles-harness (state schema 99" in res.stderr
    assert "--state-dir" in res.stderr


def test_a_foreign_non_empty_directory_is_not_taken_as_state(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "precious.txt").write_text("user data")
    res = harness(tmp_path, "up")
    assert res.returncode == 2
    assert "is not a heracles-harness state directory" in res.stderr
    assert (state / "precious.txt").read_text() == "user data"


def test_status_and_down_of_an_absent_environment(tmp_path):
    st = harness(tmp_path, "status", "--json")
    assert st.returncode == 2 and json.loads(st.stdout)["status"] == "absent"
    assert "no environment in" in st.stderr
    down = harness(tmp_path, "down")
    assert down.returncode == 0 and "no environment" in down.stderr
    env = harness(tmp_path, "env")
    assert env.returncode == 2 and "no running environment" in env.stderr


def test_toolchain_status_json_lists_every_component(tmp_path):
    res = harness(tmp_path, "toolchain", "status", "--json",
                  env={"HERACLES_CACHE_DIR": str(tmp_path / "empty")})
    data = json.loads(res.stdout)
    names = {c["name"]: c for c in data["components"]}
    assert {"etcd", "kubernetes", "kwok", "openbao", "prometheus"} <= set(names)
    assert names["etcd"]["present"] is False and names["etcd"]["state"] == "missing"
    assert res.returncode == 1  # something is missing


def test_kind_plan_renders_offline_and_prints_the_plan(tmp_path):
    run = harness(tmp_path, "backend", "kind-plan", "--out", str(tmp_path / "kind"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "kind" / "cluster.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "kind" / "rendered").iterdir()) == [
        "argocd.yaml", "external-secrets.yaml", "prometheus.yaml", "vault.yaml"]
    assert "quay.io/openbao/openbao:2.7.2" in run.stdout
    assert ". create the cluster" in run.stdout and "helm install argocd" in run.stdout


def test_kind_up_that_cannot_run_here_says_exactly_why_and_leaves_nothing(tmp_path):
    """No Docker answers and the official node image is asked for: as root the private
    daemon would reach no registry, otherwise there is no daemon to start — either way
    exit 2 with the reason, before anything starts."""
    run = harness(tmp_path, "backend", "kind-up", "--kind-image", "official",
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert run.returncode == 2, run.stderr
    assert "the kind backend cannot run on this machine: " in run.stderr
    reason = ("no registry is reachable from the private Docker daemon" if os.geteuid() == 0
              else "starting a private one needs root")
    assert reason in " ".join(run.stderr.split())
    assert not (tmp_path / "state" / "kind" / "kind.json").exists()
    assert not list((tmp_path / "registry").glob("runs/*"))


def test_an_existing_backend_config_with_a_typo_is_named(tmp_path):
    cfg = tmp_path / "existing.yaml"
    cfg.write_text("vault: {address: http://127.0.0.1:1}\nprometheus_url: x\n")
    run = harness(tmp_path, "backend", "check", str(cfg))
    assert run.returncode == 2
    assert f"existing-backend config {cfg}: unknown key(s) prometheus_url" in run.stderr


def test_vault_values_check_exits_1_on_what_cannot_run(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text('server:\n  standalone:\n    config: |\n      storage "file" {\n'
                      '        path = "/vault/data"\n      }\n')
    run = harness(tmp_path, "vault-values", str(values), "--profile", "prod")
    assert run.returncode == 1
    assert '[cannot] storage "file"' in run.stdout
