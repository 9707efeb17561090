"""The kind backend: a kind cluster (kind from its Go module) with the platform installed
from Helm charts (Helm from its Go module, charts from the chart repositories' Go
modules), images pinned to the local toolchain's component versions. Once up, the
suites see it exactly as an existing cluster (port-forwards on 127.0.0.1 to Vault,
Prometheus, Alertmanager and ESO's metrics).

No image registry is reachable from these machines, so creating the cluster needs every
image already in the local Docker (`docker load` from a machine that has them). `up()`
checks Docker and each image first and raises KindUnavailable naming what is missing —
the scenario fixtures turn that into a skip with that reason. Everything before that
(cluster config, chart values, rendered manifests, the plan of steps) is built and
tested here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.backends.existing import BackendError
from harness.backends.install.environment import ChartsEnvironment, KindUnavailable, Step
from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV
from harness.settings import Settings
from harness.toolchain import Toolchain

KIND_CAPABILITIES = frozenset({"prometheus", "eso-metrics", "pod-faults", "in-cluster"})

# kind v0.30.0's own default node image (pkg/apis/config/defaults/image.go): Kubernetes
# v1.34.0 — the newest kindest/node that kind release publishes for our v1.34 line.
NODE_IMAGE = ("kindest/node:v1.34.0@sha256:"
              "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a")


def cluster_config(name: str, api_port: int) -> dict[str, Any]:
    """kind's v1alpha4 Cluster: one control-plane node at the pinned image, the API on
    127.0.0.1 only (every listener binds 127.0.0.1)."""
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": name,
            "networking": {"apiServerAddress": "127.0.0.1", "apiServerPort": api_port},
            "nodes": [{"role": "control-plane", "image": NODE_IMAGE}]}


# The v1alpha4 fields this backend writes, as kind's types.go declares them: a fast check
# without Docker (`kind create cluster` reads its config only once a daemon answers; the
# scenarios run kind itself against a private dockerd — backends/kind/docker.py).
KIND_FIELDS = {"": {"kind", "apiVersion", "name", "networking", "nodes"},
               "networking": {"apiServerAddress", "apiServerPort", "ipFamily", "podSubnet",
                              "serviceSubnet", "disableDefaultCNI", "kubeProxyMode"},
               "nodes": {"role", "image", "extraPortMappings", "extraMounts", "labels",
                         "kubeadmConfigPatches"}}


def validate_cluster_config(cfg: dict[str, Any]) -> list[str]:
    problems = []
    if cfg.get("apiVersion") != "kind.x-k8s.io/v1alpha4" or cfg.get("kind") != "Cluster":
        problems.append("apiVersion/kind must be kind.x-k8s.io/v1alpha4 Cluster")
    problems += [f"unknown field {k}" for k in set(cfg) - KIND_FIELDS[""]]
    net = cfg.get("networking", {})
    problems += [f"unknown field networking.{k}" for k in set(net) - KIND_FIELDS["networking"]]
    if net.get("apiServerAddress") != "127.0.0.1":
        problems.append("networking.apiServerAddress must be 127.0.0.1")
    nodes = cfg.get("nodes") or []
    if not any(n.get("role") == "control-plane" for n in nodes):
        problems.append("no control-plane node")
    for i, n in enumerate(nodes):
        problems += [f"unknown field nodes[{i}].{k}" for k in set(n) - KIND_FIELDS["nodes"]]
        if n.get("role") not in ("control-plane", "worker"):
            problems.append(f"nodes[{i}].role must be control-plane or worker")
        if "@sha256:" not in str(n.get("image", "")):
            problems.append(f"nodes[{i}].image must be pinned by digest")
        for m in n.get("extraPortMappings") or []:
            if m.get("listenAddress") != "127.0.0.1":
                problems.append(f"nodes[{i}].extraPortMappings must listen on 127.0.0.1")
    return problems


class KindEnvironment(ChartsEnvironment):
    """The kind cluster: planned, rendered, created, then used as an existing cluster."""

    backend = "kind"

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        super().__init__(settings, toolchain, vault_overrides)
        self.name = f"heracles-{os.urandom(3).hex()}"
        self.capabilities = KIND_CAPABILITIES

    def render_extra(self, out: Path) -> set[str]:
        """kind's cluster config, validated against its v1alpha4 types."""
        cfg = cluster_config(self.name, 6443)
        problems = validate_cluster_config(cfg)
        if problems:
            raise BackendError(f"kind cluster config: {'; '.join(problems)}")
        (out / "cluster.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        return {NODE_IMAGE}

    def cluster_steps(self) -> list[Step]:
        kind = self.tool("kind")
        steps = [Step("preflight: Docker reachable, every image present locally",
                      action=self.preflight),
                 Step("create the cluster", [kind, "create", "cluster", "--name", self.name,
                                             "--config", str(self.dir / "cluster.yaml"),
                                             "--kubeconfig", str(self.config.kubeconfig),
                                             "--wait", "180s"])]
        steps += [Step(f"load image {img}", [kind, "load", "docker-image", img,
                                             "--name", self.name])
                  for img in self.images if img != NODE_IMAGE]
        return steps

    def preflight(self) -> None:
        docker = shutil.which("docker")
        if not docker:
            raise KindUnavailable("no docker CLI on PATH (install docker.io)")
        info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30)
        if info.returncode != 0:
            raise KindUnavailable("the Docker daemon is not reachable: "
                                  f"{(info.stderr or info.stdout).strip().splitlines()[-1]}")
        missing = [img for img in self.images if subprocess.run(
            [docker, "image", "inspect", img], capture_output=True, timeout=30).returncode]
        if missing:
            raise KindUnavailable(
                f"{len(missing)} image(s) not in the local Docker and no registry is "
                f"reachable from this machine: {', '.join(missing)} (docker load them "
                "from a machine that has them)")

    def forward(self, namespace: str, service: str, port: int) -> str:
        """`kubectl port-forward` on 127.0.0.1, marked with the run id like every process
        the harness starts: if this session dies, the next one's reaper stops it."""
        import port_for

        local = port_for.select_random()
        env = {**os.environ, RUN_ID_ENV: self.run_id, REGISTRY_ENV: str(self.registry.root)}
        self.forwards.append(subprocess.Popen(
            [self.kubectl, "--kubeconfig", str(self.config.kubeconfig), "port-forward",
             "-n", namespace, "--address", "127.0.0.1", f"svc/{service}",
             f"{local}:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True))
        return f"127.0.0.1:{local}"

    def record_extra(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_record(cls, settings: Settings) -> KindEnvironment:
        kind = super().from_record(settings)
        assert isinstance(kind, KindEnvironment)
        kind.name = kind.load_record()["name"]
        return kind

    def down(self) -> None:
        self.stop_session()
        (self.dir / "kind.json").unlink(missing_ok=True)
        if not self.toolchain.problem("kind"):
            subprocess.run([self.tool("kind"), "delete", "cluster", "--name", self.name],
                           capture_output=True, timeout=300)
