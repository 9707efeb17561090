"""Environment lifecycle through the real CLI: up, attach, down, reaping, failed starts.

Each test uses its own state directory and its own registry, so it never touches the
session's environment and the reaper it exercises judges only its own runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness import eventually
from harness.runtime.ports import PortRegistry
from harness.runtime.registry import processes_of_run
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.toolchain.cache import BinaryCache

pytestmark = [pytest.mark.scenario, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness.cli"]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HERACLES_REGISTRY_DIR": str(tmp_path / "registry"),
           "HERACLES_STATE_DIR": str(tmp_path / "state")}
    yield env
    subprocess.run([*HARNESS, "down"], env=env, capture_output=True, timeout=120)


def harness(env: dict[str, str], *args: str, check: bool = True,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*HARNESS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def run_id(state_dir: str) -> str:
    return json.loads((Path(state_dir) / "environment.json").read_text())["run_id"]


def test_up_attach_kubectl_down_leaves_no_process(cli_env):
    harness(cli_env, "up", "--components", "kube")
    rid = run_id(cli_env["HERACLES_STATE_DIR"])
    assert len(processes_of_run(rid)) == 5  # etcd, apiserver, kcm, scheduler, kwok
    kubectl = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    nodes = subprocess.run([str(kubectl), "--kubeconfig",
                            f"{cli_env['HERACLES_STATE_DIR']}/kubeconfig", "get", "nodes"],
                           capture_output=True, text=True, check=True).stdout
    assert "kwok-node-0" in nodes and " Ready " in nodes

    again = harness(cli_env, "up", "--components", "kube")
    assert "attached" in again.stderr and run_id(cli_env["HERACLES_STATE_DIR"]) == rid
    status = json.loads(harness(cli_env, "status", "--json").stdout)
    assert status["status"] == "up"
    assert all(c["ready"] for c in status["components"].values())

    harness(cli_env, "down")
    assert processes_of_run(rid) == []
    assert PortRegistry().owned_by(rid) == []


def test_processes_of_a_sigkilled_run_are_reaped_by_the_next_up(cli_env, tmp_path):
    state = Path(cli_env["HERACLES_STATE_DIR"])
    victim = subprocess.Popen([*HARNESS, "up", "--components", "kube"], env=cli_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def apiserver_recorded():
        data = json.loads((state / "environment.json").read_text())
        return data["run_id"] if "kube-apiserver" in data.get("processes", {}) else None

    rid = eventually(apiserver_recorded, timeout=120, description="victim run started")
    victim.send_signal(signal.SIGKILL)  # mid-start: kcm/scheduler/kwok may be starting
    victim.wait()
    orphans = processes_of_run(rid)
    assert orphans, "the killed run should have left processes behind"

    other = {**cli_env, "HERACLES_STATE_DIR": str(tmp_path / "state2")}
    up = harness(other, "up", "--components", "etcd")
    assert f"reaped leftovers of dead run(s): {rid}" in up.stderr
    assert processes_of_run(rid) == []
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in orphans)
    assert json.loads((state / "environment.json").read_text())["status"] == "down"
    harness(other, "down")


def test_a_component_missing_its_readiness_deadline_leaves_nothing_up(cli_env, tmp_path):
    """A kube-apiserver that never becomes ready: the error names it and shows its log
    tail, and etcd (already started) is stopped again."""
    real = Toolchain(Settings().cache_dir)
    cache = tmp_path / "cache"
    fake = Toolchain(cache)
    staged = tmp_path / "staged"
    staged.mkdir()
    spec = fake.spec("kubernetes")
    for name in spec.binaries:
        script = staged / name
        script.write_text("#!/bin/sh\necho 'fake apiserver: listening nowhere'\nexec sleep 600\n")
        script.chmod(0o755)
    BinaryCache(cache).commit(spec, staged, {})
    for comp in ("etcd", "kwok"):
        c = real.spec(comp)
        src = Path(real.binary(comp, next(iter(c.binaries)))).parent
        BinaryCache(cache).commit(c, src, {})
    env = {**cli_env, "HERACLES_CACHE_DIR": str(cache), "HERACLES_START_TIMEOUT": "3"}
    t0 = time.monotonic()
    res = harness(env, "up", "--components", "kube", check=False)
    assert res.returncode == 2
    assert "kube-apiserver was not ready within its 3s deadline" in res.stderr
    assert "fake apiserver: listening nowhere" in res.stderr
    assert "Traceback" not in res.stderr
    state = json.loads((Path(env["HERACLES_STATE_DIR"]) / "environment.json").read_text())
    assert state["status"] == "down"
    assert processes_of_run(state["run_id"]) == []
    assert time.monotonic() - t0 < 60


def test_a_vault_binary_from_path_can_replace_the_toolchain_openbao(cli_env, tmp_path):
    """HERACLES_VAULT_BINARY picks the server binary from PATH (a `vault` here is a
    wrapper around OpenBao: HashiCorp's binary cannot be installed on these machines)."""
    bao = Toolchain(Settings().cache_dir).binary("openbao", "bao")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "vault"
    shim.write_text(f'#!/bin/sh\nexec "{bao}" "$@"\n')
    shim.chmod(0o755)
    env = {**cli_env, "HERACLES_VAULT_BINARY": "vault",
           "PATH": f"{shim_dir}:{os.environ['PATH']}"}
    harness(env, "up", "--components", "vault")
    state = json.loads((Path(env["HERACLES_STATE_DIR"]) / "environment.json").read_text())
    assert state["processes"]["vault"]["argv"][0] == str(shim)
    missing = {**cli_env, "HERACLES_VAULT_BINARY": "no-such-vault",
               "HERACLES_STATE_DIR": str(tmp_path / "other")}
    res = harness(missing, "up", "--components", "vault", check=False)
    assert res.returncode == 2
    assert "HERACLES_VAULT_BINARY='no-such-vault': not found on PATH" in res.stderr


def test_a_stopped_environment_of_another_profile_is_refused_or_recreated(cli_env):
    """`down`, then `up --profile staging` in the same directory kept dev's etcd and Git
    data (stores and Applications for an http Vault that is TLS-only on staging): it is
    refused naming the fix, and `--recreate` starts over."""
    state = Path(cli_env["HERACLES_STATE_DIR"])
    harness(cli_env, "up", "--profile", "dev", "--components", "etcd")
    marker = state / "data" / "etcd" / "from-dev"
    marker.write_text("dev's data")
    harness(cli_env, "down")

    refused = harness(cli_env, "up", "--profile", "staging", "--components", "etcd",
                      check=False)
    assert refused.returncode == 2, refused.stderr
    assert "stopped 'dev' environment" in refused.stderr
    assert "--recreate" in refused.stderr and "down --purge" in refused.stderr
    assert "Traceback" not in refused.stderr and marker.exists()

    harness(cli_env, "up", "--components", "etcd")  # no profile: it keeps dev's
    assert json.loads((state / "environment.json").read_text())["profile"] == "dev"
    assert marker.exists()  # and its data
    harness(cli_env, "down")

    harness(cli_env, "up", "--profile", "staging", "--components", "etcd", "--recreate")
    assert json.loads((state / "environment.json").read_text())["profile"] == "staging"
    assert not marker.exists()
