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
     "unknown component(s): vaultt; known: etcd, kube, vault, eso, alertmanager, "
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
    assert st.returncode == 0 and json.loads(st.stdout)["status"] == "absent"
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
