"""The kind backend against real components where this machine allows: its rendered
charts are accepted by a real v1.34 apiserver (server-side dry run, with the CRDs at the
toolchain's versions), and the portable suites run with `--harness-backend kind` either
pass on a machine with Docker and the images, or are skipped with the precise reason."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from kubernetes import client

from harness.backends.kind.docker import PrivateDockerd
from harness.backends.kind.environment import KindEnvironment
from harness.errors import HarnessError

from .helpers import run_suite


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


def test_kind_itself_accepts_the_cluster_config_and_stops_only_at_the_image_pull(
        platform, docker, tmp_path):
    """kind decodes its config strictly once a daemon answers: ours passes every check
    and fails only where no registry is reachable; a misspelt field is named."""
    kind = KindEnvironment(platform.settings.with_(state_dir=tmp_path))
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
        # Leave the daemon as found: the next test reads which images it lacks.
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


def test_portable_suites_on_the_kind_backend_pass_or_skip_with_the_reason(platform,
                                                                          docker, tmp_path):
    """With a Docker daemon (ours) the kind backend gets past the Docker check and
    stops at the images no registry here can provide — each test says which."""
    run, suite, tail = run_suite(["--harness-backend", "kind", "scenarios/test_secret_sync.py"],
                                 tmp_path / "junit.xml", env=docker.env(), timeout=3600)
    assert run.returncode == 0, tail
    assert int(suite.get("tests", 0)) >= 5
    skipped = [s.get("message", "") for s in suite.iter("skipped")]
    if skipped:  # no Docker or no images here: every test says exactly why
        assert len(skipped) == int(suite.get("tests", 0)), tail
        assert all(m.startswith("kind backend: ") and
                   "image(s) not in the local Docker and no registry is reachable" in m
                   and "quay.io/openbao/openbao:2.7.2" in m for m in skipped), skipped
