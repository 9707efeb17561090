"""kind end to end on this machine: kind itself (from its Go module) creates a cluster
from the node image assembled here (`harness images node-image`) against the harness's
private Docker daemon, the platform goes on through the shared chart plan, and the
portable suites run on it unchanged (`--harness-backend kind`), each profile in a pytest
of its own:

- dev: secret delivery through the spec's store verbatim, the runbook, Argo CD's
  app-of-apps synced from the harness's Git server;
- staging (3 raft Pods, TLS, init and unseal through `kubectl exec`): Vault HA failover
  by Pod deletion, ESO scaled away, a cordoned node.

Plus what kind does with its config and our images, a server-side dry run of the charts,
and a killed `kind-up` reaped by the next run: daemon, node container, cgroups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml
from kubernetes import client

from harness.backends.kind.docker import PrivateDockerd
from harness.backends.kind.environment import KindEnvironment
from harness.errors import HarnessError
from harness.runtime import node_host
from harness.runtime.registry import RunRegistry
from harness.wait import eventually

from .helpers import ROOT, run_backend_suite

pytestmark = [pytest.mark.scenario, pytest.mark.real_node]

SUITES = {
    "dev": (["scenarios/test_secret_sync.py", "scenarios/test_runbook.py",
             "scenarios/test_gitops_in_cluster.py"], []),
    # the runbook on staging runs on the pods backend (the same install path)
    "staging": (["scenarios/test_pod_faults.py"], ["--harness-time-scale", "60"]),
}
# dev may skip the raft snapshot (a dev-mode Vault has no raft) and the audit-file test
ALLOWED_SKIPS = {"dev": 2, "staging": 0}
MIN_TESTS = {"dev": 15, "staging": 3}


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the kind backend's private Docker daemon needs root")


@pytest.fixture(scope="module")
def docker(platform):
    """A Docker daemon of our own, with no network to reach (see backends/kind/docker.py)."""
    tc = platform.toolchain
    try:
        daemon = PrivateDockerd(str(tc.binary("docker", "dockerd")),
                                str(tc.binary("docker", "docker")), platform.record.run_id,
                                str(platform.registry.root), platform.state.root / "logs")
    except HarnessError as exc:
        pytest.skip(f"no private Docker daemon here: {exc}")
    with daemon:
        yield daemon


def kind_run(platform, docker, *args):
    kind = str(platform.toolchain.binary("kind", "kind"))
    return subprocess.run([kind, *args], capture_output=True, text=True, timeout=300,
                          env=docker.env())


def test_kind_itself_accepts_the_official_config_and_stops_only_at_the_image_pull(
        platform, docker, tmp_path):
    """kind decodes its config strictly once a daemon answers: ours passes every check
    and, with the official image, fails only where no registry is reachable; a misspelt
    field is named."""
    kind = KindEnvironment(platform.settings.with_(state_dir=tmp_path, kind_image="official"))
    rendered = kind.render(tmp_path / "kind")
    cfg = rendered["dir"] / "cluster.yaml"
    good = kind_run(platform, docker, "create", "cluster", "--name", "heracles-cfgcheck",
                    "--config", str(cfg))
    assert good.returncode != 0
    assert "failed to pull image \"kindest/node:v1.34.0@sha256:" in good.stderr, good.stderr
    assert "network is unreachable" in good.stderr  # nothing left the machine
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text(cfg.read_text().replace("apiServerPort:", "apiServerPortt:"))
    bad = kind_run(platform, docker, "create", "cluster", "--name", "heracles-cfgcheck",
                   "--config", str(bad_cfg))
    assert "field apiServerPortt not found in type v1alpha4.Networking" in bad.stderr
    assert "pull" not in bad.stderr
    assert "No kind clusters found" in kind_run(platform, docker, "get", "clusters").stderr


def test_docker_loads_the_images_built_here(platform, docker):
    """The same archives containerd imports are what `docker load` (and so `kind load
    image-archive`) takes: the image is listed under its upstream name, same image id."""
    from harness.images import ImageBuilder

    built = ImageBuilder(platform.toolchain, platform.settings.cache_dir).build(
        ["pause", "openbao"])
    docker_bin = str(platform.toolchain.binary("docker", "docker"))
    for image in built:
        load = subprocess.run([docker_bin, "load", "-i", image.archive], capture_output=True,
                              text=True, timeout=300, env=docker.env())
        assert load.returncode == 0, load.stderr
        inspect = subprocess.run([docker_bin, "image", "inspect", "--format", "{{.Id}}",
                                  image.ref], capture_output=True, text=True, timeout=60,
                                 env=docker.env())
        assert inspect.returncode == 0, inspect.stderr
        assert inspect.stdout.strip() == image.image_id
        subprocess.run([docker_bin, "image", "rm", image.ref], capture_output=True,
                       timeout=60, env=docker.env(), check=True)


def test_the_rendered_charts_pass_a_server_side_dry_run(platform, kube, tmp_path):
    kind = KindEnvironment(platform.settings.with_(state_dir=tmp_path))
    rendered = kind.render(tmp_path / "kind")
    for f in kind.crd_files():
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    made = []
    for chart in kind.charts:
        if kube.absent(kube.core.read_namespace, chart.namespace):
            kube.core.create_namespace(client.V1Namespace(
                metadata=client.V1ObjectMeta(name=chart.namespace)))
            made.append(chart.namespace)
    try:
        for chart in kind.charts:
            groups: dict[str, list[dict]] = {}  # as helm does: no namespace -> the release's
            for doc in rendered["rendered"][chart.release]:
                ns = doc.get("metadata", {}).get("namespace") or chart.namespace
                groups.setdefault(ns, []).append(doc)
            for ns, docs in groups.items():
                path = tmp_path / f"{chart.release}-{ns}.yaml"
                path.write_text(yaml.safe_dump_all(docs))
                run = kube.kubectl("apply", "--server-side", "--dry-run=server",
                                   "--force-conflicts", "--field-manager=heracles-kind-check",
                                   "-n", ns, "-f", str(path), check=False)
                assert run.returncode == 0, f"{chart.release}: {run.stderr[-3000:]}"
                assert run.stdout.count("(server dry run)") == len(docs)
    finally:
        for ns in made:
            kube.core.delete_namespace(ns)


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(SUITES))
def test_the_portable_suites_pass_on_kind(profile: str, tmp_path: Path) -> None:
    needs_root()
    files, extra = SUITES[profile]
    run, suite, tail = run_backend_suite("kind", profile, files, extra,
                                         tmp_path / "junit.xml")
    assert run.returncode == 0, tail
    assert int(suite.get("tests", 0)) >= MIN_TESTS[profile], tail
    skipped = [s.get("message", "") for s in suite.iter("skipped")]
    assert len(skipped) <= ALLOWED_SKIPS[profile], skipped
    assert not [m for m in skipped if "image" in m], skipped  # no "image missing" skip
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail


@pytest.mark.slow
def test_a_killed_kind_up_is_reaped_by_the_next_run(tmp_path: Path) -> None:
    """`kind-up` SIGKILLed once its cluster exists (as a crash would: its children
    live on): the next run's reaper stops the private daemon, the node container's every
    process (the run's cgroups), the bridge and the Git server, and gives the kernel
    settings back."""
    needs_root()
    registry = tmp_path / "registry"
    state = Path(tempfile.mkdtemp(prefix="hk-", dir="/tmp"))
    env = {**os.environ, "HERACLES_REGISTRY_DIR": str(registry),
           "HERACLES_STATE_DIR": str(state)}
    log = (tmp_path / "kind-up.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "backend", "kind-up"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)
    try:
        record = state / "kind" / "kind.json"

        def cluster_created() -> bool:
            text = (tmp_path / "kind-up.log").read_text()
            assert proc.poll() is None, text
            return "load the platform's images" in text

        eventually(cluster_created, timeout=600, interval=1,
                   description="kind-up created its cluster")
        rec = json.loads(record.read_text())
        run_id = rec["run_id"]
        dockerd = psutil.Process(rec["dockerd_pid"])
        assert node_host.cgroup_pids(run_id), "the node container runs in the run's cgroups"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(1)
        assert dockerd.is_running(), "a crash leaves the daemon behind"
        reaped = RunRegistry(registry).reap()
        assert run_id in reaped
        eventually(lambda: not dockerd.is_running() or dockerd.status() == "zombie",
                   timeout=30, description="the private daemon stopped")
        assert not node_host.cgroup_pids(run_id)
        assert not node_host.cgroup_dirs(run_id)
        assert run_id not in node_host.sysctl_runs()
        marked = [p for p in psutil.process_iter(["environ"])
                  if (p.info.get("environ") or {}).get("HERACLES_RUN_ID") == run_id]
        assert not marked, [p.pid for p in marked]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        RunRegistry(registry).reap()
        log.close()
        shutil.rmtree(state, ignore_errors=True)
