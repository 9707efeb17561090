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

import copy
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.backends.existing import BackendError, ExistingConfig, ExistingEnvironment
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV
from harness.runtime.registry import RunRegistry, kill_processes, new_run_id, processes_of_run
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.wait import eventually

KIND_CAPABILITIES = frozenset({"prometheus", "eso-metrics", "pod-faults"})

# kind v0.30.0's own default node image (pkg/apis/config/defaults/image.go): Kubernetes
# v1.34.0 — the newest kindest/node that kind release publishes for our v1.34 line.
NODE_IMAGE = ("kindest/node:v1.34.0@sha256:"
              "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a")
OPENBAO_IMAGE = ("quay.io/openbao/openbao", "2.7.2")
ESO_VERSION = "v0.16.2"
ARGOCD_VERSION = "v3.2.11"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_VERSION = "v2.42.0"
ALERTMANAGER_VERSION = "v0.25.0"

# Where the pod faults act on a chart-installed platform (kind, pods).
POD_FAULTS = {
    "vault_pods": {"namespace": "vault",
                   "selector": "app.kubernetes.io/name=vault,component=server"},
    "eso_deployment": {"namespace": "external-secrets", "name": "external-secrets"}}

RAFT_CONFIG = """\
ui = false
listener "tcp" {
  address         = "[::]:8200"
  cluster_address = "[::]:8201"
  tls_disable     = 1
  telemetry {
    unauthenticated_metrics_access = true
  }
}
storage "raft" {
  path                   = "/vault/data"
  performance_multiplier = 1
  retry_join {
    leader_api_addr = "http://vault-0.vault-internal:8200"
  }
  retry_join {
    leader_api_addr = "http://vault-1.vault-internal:8200"
  }
  retry_join {
    leader_api_addr = "http://vault-2.vault-internal:8200"
  }
}
service_registration "kubernetes" {}
telemetry {
  prometheus_retention_time = "30s"
  disable_hostname          = true
}
"""


class KindUnavailable(HarnessError):
    """The kind backend cannot run on this machine; the message says exactly why."""


@dataclass
class Chart:
    """One Helm release: its chart archive in the toolchain, the subcharts it declares
    (archives we have, or None: only allowed while the values disable it), values."""

    release: str
    namespace: str
    tool: str
    archive: str
    subcharts: dict[str, tuple[str, str] | None]
    values: dict[str, Any]
    post_render: str | None = None
    wait: bool = True


@dataclass
class Step:
    name: str
    argv: list[str] = field(default_factory=list)
    action: Callable[[], None] | None = None

    def describe(self) -> str:
        return " ".join(self.argv) if self.argv else f"({self.name})"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else copy.deepcopy(v)
    return out


def lookup(values: dict[str, Any], dotted: str) -> Any:
    cur: Any = values
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def vault_values(customer: dict[str, Any] | None = None) -> dict[str, Any]:
    """Vault chart values: 3-node raft HA (the spec's production shape), OpenBao at the
    toolchain's version. The customer's own Helm values, when given, win for the server
    configuration (server.ha.*, server.standalone.*); the image stays pinned."""
    base: dict[str, Any] = {
        "global": {"enabled": True},
        "injector": {"enabled": False},
        "server": {
            "image": {"repository": OPENBAO_IMAGE[0], "tag": OPENBAO_IMAGE[1]},
            "ha": {"enabled": True, "replicas": 3,
                   "raft": {"enabled": True, "setNodeId": True, "config": RAFT_CONFIG}},
            "dataStorage": {"enabled": True, "size": "1Gi"},
        },
    }
    merged = deep_merge(base, customer or {})
    merged["server"]["image"] = base["server"]["image"]
    return merged


def charts(vault_overrides: dict[str, Any] | None = None) -> list[Chart]:
    eso_tag = {"tag": ESO_VERSION}
    return [
        Chart("vault", "vault", "chart-vault", "vault.tgz", {}, vault_values(vault_overrides),
              post_render="openbao", wait=False),  # pods are Ready only once unsealed
        Chart("external-secrets", "external-secrets", "chart-external-secrets",
              "external-secrets.tgz", {"bitwarden-sdk-server": None}, {
                  "installCRDs": False,  # the toolchain's bundle at the binary's version
                  "image": eso_tag, "webhook": {"image": eso_tag},
                  "certController": {"image": eso_tag},
                  "serviceMonitor": {"enabled": True},
                  "metrics": {"service": {"enabled": True}},
                  "bitwarden-sdk-server": {"enabled": False}}),
        Chart("kube-prometheus-stack", "monitoring", "chart-kube-prometheus-stack",
              "kube-prometheus-stack.tgz", {
                  "crds": None,
                  "kube-state-metrics": ("chart-kube-prometheus-stack",
                                         "kube-state-metrics.tgz"),
                  "prometheus-node-exporter": ("chart-kube-prometheus-stack",
                                               "prometheus-node-exporter.tgz"),
                  "prometheus-windows-exporter": ("chart-kube-prometheus-stack",
                                                  "prometheus-windows-exporter.tgz"),
                  "grafana": None}, {
                  "crds": {"enabled": False},  # the toolchain's v0.85.0 CRDs instead
                  "grafana": {"enabled": False},
                  "windowsMonitoring": {"enabled": False},
                  "nodeExporter": {"enabled": False},
                  "prometheusOperator": {"image": {"tag": PROMETHEUS_OPERATOR_VERSION},
                                         "prometheusConfigReloader": {
                                             "image": {"tag": PROMETHEUS_OPERATOR_VERSION}},
                                         "admissionWebhooks": {"enabled": False},
                                         "tls": {"enabled": False}},
                  "prometheus": {"prometheusSpec": {
                      "image": {"tag": PROMETHEUS_VERSION},
                      "ruleSelectorNilUsesHelmValues": False,
                      "serviceMonitorSelectorNilUsesHelmValues": False}},
                  "alertmanager": {"alertmanagerSpec": {
                      "image": {"tag": ALERTMANAGER_VERSION}}}}),
        Chart("argocd", "argocd", "chart-argo-cd", "argo-cd.tgz", {"redis-ha": None}, {
            "global": {"image": {"tag": ARGOCD_VERSION}},
            "crds": {"install": False},  # the toolchain's CRDs at the binary's version
            "dex": {"enabled": False}, "notifications": {"enabled": False},
            "applicationSet": {"enabled": False},
            "redis-ha": {"enabled": False}}),
    ]


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


def images_of(manifests: list[dict[str, Any]]) -> set[str]:
    """Every container image the rendered objects would run."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for c in node.get(key) or []:
                    if isinstance(c, dict) and c.get("image"):
                        found.add(str(c["image"]))
                    for arg in (c.get("args") or []) if isinstance(c, dict) else []:
                        # images an operator runs itself (its config-reloader sidecars)
                        if str(arg).startswith("--prometheus-config-reloader="):
                            found.add(str(arg).split("=", 1)[1])
            image = node.get("image")  # the spec of a Prometheus / Alertmanager resource
            if isinstance(image, str) and ":" in image and "name" not in node:
                found.add(image)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for m in manifests:
        walk(m)
    return found


class KindEnvironment(ExistingEnvironment):
    """The kind cluster: planned, rendered, created, then used as an existing cluster."""

    backend = "kind"

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        settings = settings or Settings()
        self.dir = settings.state_dir / "kind"
        self.name = f"heracles-{secrets.token_hex(3)}"
        cfg = ExistingConfig(source=self.dir / "existing.yaml",
                             kubeconfig=self.dir / "kubeconfig",
                             vault_address="http://127.0.0.1:0")
        super().__init__(cfg, settings, toolchain)
        self.capabilities = KIND_CAPABILITIES
        if vault_overrides is None and settings.vault_values is not None:
            # the team's own Vault values for the chart (image pinned regardless)
            vault_overrides = yaml.safe_load(settings.vault_values.read_text()) or {}
        self.charts = charts(vault_overrides)
        self.forwards: list[subprocess.Popen[bytes]] = []
        self._render: dict[str, Any] | None = None
        self.run_id = new_run_id()
        self.registry = RunRegistry(self.settings.registry_dir)

    def tool(self, component: str, name: str | None = None) -> str:
        problem = self.toolchain.problem(component)
        if problem:
            raise BackendError(f"{problem}; run: harness toolchain install --only {component}")
        return str(self.toolchain.binary(component, name or component))

    # ---- render: everything that needs no Docker -----------------------------------------
    def chart_dir(self, chart: Chart, work: Path) -> Path:
        """The chart unpacked with its declared subcharts: ours, or — only while the
        values disable them — a Chart.yaml stub, since Helm insists every declared
        dependency is present even when its condition is false."""
        target = work / chart.release
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(self.toolchain.file(chart.tool, chart.archive)) as tar:
            tar.extractall(target, filter="data")
        root = target / chart.archive.removesuffix(".tgz")
        meta = yaml.safe_load((root / "Chart.yaml").read_text())
        for dep in meta.get("dependencies") or []:
            name = dep["name"]
            dest = root / "charts" / name
            if dest.exists():
                continue
            if name not in chart.subcharts:
                raise BackendError(f"chart {chart.release}: dependency {name} is not "
                                   "available offline")
            source = chart.subcharts[name]
            if source is None:
                cond = dep.get("condition", "")
                if cond and lookup(chart.values, cond.split(",")[0]) is not False:
                    raise BackendError(f"chart {chart.release}: dependency {name} is "
                                       f"enabled ({cond}) but not available offline")
                dest.mkdir(parents=True)
                (dest / "Chart.yaml").write_text(yaml.safe_dump(
                    {"apiVersion": "v2", "name": name, "version": str(dep["version"]).strip(
                        "*").rstrip(".") or "0.0.0"}))
                continue
            with tarfile.open(self.toolchain.file(*source)) as tar:
                tar.extractall(root / "charts", filter="data")
        return root

    def helm_env(self) -> dict[str, str]:
        """Helm's caches and config inside the state dir: nothing from ~/.config."""
        base = self.dir / "helm"
        return {**os.environ, "HELM_CACHE_HOME": str(base / "cache"),
                "HELM_CONFIG_HOME": str(base / "config"),
                "HELM_DATA_HOME": str(base / "data")}

    def helm_args(self, chart: Chart, root: Path, values_file: Path) -> list[str]:
        args = [chart.release, str(root), "--namespace", chart.namespace,
                "--values", str(values_file)]
        if chart.post_render:
            args += ["--post-renderer", sys.executable, "--post-renderer-args", "-m",
                     "--post-renderer-args", "harness.backends.kind.postrender",
                     "--post-renderer-args", chart.post_render]
        return args

    def render(self, out: Path | None = None) -> dict[str, Any]:
        """Cluster config, values and rendered manifests under out (default: the state
        dir's kind/), with `helm lint` and `helm template` run on each chart. Returns
        what the plan needs: files, the images every object runs."""
        out = out or self.dir
        out.mkdir(parents=True, exist_ok=True)
        helm = self.tool("helm")
        cfg = cluster_config(self.name, 6443)
        problems = validate_cluster_config(cfg)
        if problems:
            raise BackendError(f"kind cluster config: {'; '.join(problems)}")
        (out / "cluster.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        rendered: dict[str, list[dict[str, Any]]] = {}
        for chart in self.charts:
            root = self.chart_dir(chart, out / "charts")
            values_file = out / "values" / f"{chart.release}.yaml"
            values_file.parent.mkdir(parents=True, exist_ok=True)
            values_file.write_text(yaml.safe_dump(chart.values, sort_keys=False))
            lint = subprocess.run([helm, "lint", str(root), "--values", str(values_file),
                                   "--kube-version", "1.34.0"], capture_output=True,
                                  text=True, env=self.helm_env(), timeout=120)
            if lint.returncode != 0:
                raise BackendError(f"helm lint {chart.release}: {lint.stdout[-2000:]}"
                                   f"{lint.stderr[-2000:]}")
            tpl = subprocess.run([helm, "template", *self.helm_args(chart, root, values_file),
                                  "--kube-version", "1.34.0"], capture_output=True,
                                 text=True, env=self.helm_env(), timeout=120)
            if tpl.returncode != 0:
                raise BackendError(f"helm template {chart.release}: {tpl.stderr.strip()}")
            (out / "rendered").mkdir(exist_ok=True)
            (out / "rendered" / f"{chart.release}.yaml").write_text(tpl.stdout)
            rendered[chart.release] = [d for d in yaml.safe_load_all(tpl.stdout)
                                       if isinstance(d, dict)]
        images = sorted({NODE_IMAGE, *(i for docs in rendered.values()
                                        for i in images_of(docs))})
        self._render = {"dir": out, "rendered": rendered, "images": images}
        return self._render

    # ---- the plan ----------------------------------------------------------------------
    CRD_TOOLS = ("prometheus-operator-crds", "prometheus-operator-crds-stack", "argocd-crds")

    def crd_files(self) -> list[Path]:
        """Every CRD the charts' objects need, at the toolchain's versions."""
        return [self.toolchain.file("external-secrets", "crds/bundle.yaml"),
                *[self.toolchain.file(t, f) for t in self.CRD_TOOLS
                  for f in self.toolchain.spec(t).files]]

    def plan(self) -> list[Step]:
        kind, kubectl = self.tool("kind"), self.kubectl
        kc = str(self.config.kubeconfig)
        crds = self.crd_files()
        steps = [Step("preflight: Docker reachable, every image present locally",
                      action=self.preflight),
                 Step("create the cluster", [kind, "create", "cluster", "--name", self.name,
                                             "--config", str(self.dir / "cluster.yaml"),
                                             "--kubeconfig", kc, "--wait", "180s"])]
        steps += [Step(f"load image {img}", [kind, "load", "docker-image", img,
                                             "--name", self.name])
                  for img in self.images if img != NODE_IMAGE]
        steps.append(Step("install CRDs at the toolchain's versions",
                          [kubectl, "--kubeconfig", kc, "apply", "--server-side",
                           *[a for f in crds for a in ("-f", str(f))]]))
        helm = self.tool("helm")
        for chart in self.charts:
            root = self.dir / "charts" / chart.release / chart.archive.removesuffix(".tgz")
            argv = [helm, "upgrade", "--install", "--create-namespace", "--kubeconfig", kc,
                    *self.helm_args(chart, root, self.dir / "values" / f"{chart.release}.yaml")]
            if chart.wait:
                argv += ["--wait", "--timeout", "5m"]
            steps.append(Step(f"helm install {chart.release}", argv))
            if chart.release == "vault":
                steps.append(Step("vault: operator init (5 shares, threshold 3) on vault-0, "
                                  "unseal every pod, configure kubernetes auth, seed",
                                  action=self.init_vault))
        steps.append(Step("port-forwards on 127.0.0.1: Vault, Prometheus, Alertmanager, "
                          "ESO metrics", action=self.port_forwards))
        return steps

    @property
    def images(self) -> list[str]:
        if self._render is None:
            self._render = self.render()
        return list(self._render["images"])

    # ---- run ---------------------------------------------------------------------------
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

    def up(self, progress: Callable[[str], None] = lambda _m: None) -> KindEnvironment:
        steps = self.plan()
        progress(steps[0].name)
        steps[0].action()  # type: ignore[misc]  # preflight: KindUnavailable -> skip
        self.registry.register(self.run_id, self.dir, "session")
        self.save_record()
        for step in steps[1:]:
            progress(step.name)
            if step.action:
                step.action()
                continue
            run = subprocess.run(step.argv, capture_output=True, text=True,
                                 env=self.helm_env(), timeout=900)
            if run.returncode != 0:
                raise BackendError(f"kind backend step {step.name!r} failed: "
                                   f"{run.stderr.strip()[-2000:]}")
        super().up()
        return self

    def _kubectl(self, *args: str, input_: str | None = None) -> str:
        run = subprocess.run([self.kubectl, "--kubeconfig", str(self.config.kubeconfig),
                              *args], capture_output=True, text=True, input=input_,
                             timeout=120)
        if run.returncode != 0:
            raise BackendError(f"kubectl {args[0]}: {run.stderr.strip()}")
        return run.stdout

    def _bao(self, pod: str, token: str, *args: str, stdin: str = "") -> str:
        """`bao ...` inside a Vault pod; the token goes over stdin, never into argv."""
        script = 'read -r BAO_TOKEN; export BAO_TOKEN; exec bao "$@"'
        return self._kubectl("exec", "-i", "-n", "vault", pod, "--", "sh", "-c", script,
                             "bao", *args, input_=f"{token}\n{stdin}")

    def init_vault(self) -> None:
        """The runbook's init + unseal with the ORIGINAL keys (kept 0600 in the state
        dir), then what ESO needs: KV v2 at secret/, kubernetes auth with the pod's own
        reviewer token, the spec's policy and role, and the runbook's seeds."""
        from harness.backends.local.components.eso import VAULT_POLICY, VAULT_ROLE
        from harness.runtime.redact import REDACTOR
        from harness.vault_config.seed import parse_seed

        replicas = int(lookup(self.charts[0].values, "server.ha.replicas") or 1)
        pods = [f"vault-{i}" for i in range(replicas)]
        def running(pod: str) -> bool:
            # `kubectl wait` on a Pod the StatefulSet has not created yet fails at once
            phase = self._kubectl("get", "-n", "vault", f"pod/{pod}", "-o",
                                  "jsonpath={.status.phase}")
            if phase != "Running":
                raise BackendError(f"{pod} is {phase or 'not created yet'}")
            return True

        for pod in pods:
            eventually(functools.partial(running, pod), timeout=300, interval=1,
                       retry_on=(BackendError,), error=BackendError,
                       description=f"Vault Pod {pod} Running")
        init = json.loads(self._kubectl("exec", "-n", "vault", pods[0], "--", "bao",
                                        "operator", "init", "-key-shares=5",
                                        "-key-threshold=3", "-format=json"))
        REDACTOR.add(init["root_token"], *init["unseal_keys_b64"])
        write_private(self.dir / "vault-init.json", json.dumps(init).encode())
        write_private(self.dir / "root-token", init["root_token"].encode())
        self.unseal_pod(pods[0])
        for pod in pods[1:]:  # "not initialized" until retry_join has joined the leader
            eventually(functools.partial(self.unseal_pod, pod), timeout=120,
                       retry_on=(BackendError,),
                       error=BackendError, description=f"{pod} joins the raft cluster "
                       "and unseals")
        token = init["root_token"]
        fixtures = self.settings.fixtures_dir
        self._bao(pods[0], token, "secrets", "enable", "-path=secret", "kv-v2")
        self._bao(pods[0], token, "auth", "enable", "kubernetes")
        self._bao(pods[0], token, "write", "auth/kubernetes/config",
                  "kubernetes_host=https://kubernetes.default.svc:443")
        self._bao(pods[0], token, "policy", "write", VAULT_POLICY, "-",
                  stdin=(fixtures / "vault" / "policies" / "external-secrets.hcl").read_text())
        self._bao(pods[0], token, "write", f"auth/kubernetes/role/{VAULT_ROLE}",
                  "bound_service_account_names=external-secrets",
                  "bound_service_account_namespaces=external-secrets",
                  f"policies={VAULT_POLICY}", "ttl=1h")
        for mount, path, values in parse_seed(fixtures / "vault" / "seed.txt"):
            self._bao(pods[0], token, "kv", "put", f"-mount={mount}", path, "-",
                      stdin=json.dumps(values))  # values over stdin, never in argv
        self.config.vault_token_file = self.dir / "root-token"

    def unseal_pod(self, pod: str) -> bool:
        """The runbook's unseal of one Vault Pod with the original keys (kept 0600 in
        the state dir), through `kubectl exec`."""
        init = json.loads((self.dir / "vault-init.json").read_text())
        for key in init["unseal_keys_b64"][:3]:
            # The key over stdin, never in argv on the host (found when this first ran,
            # against the real node: `bao operator unseal -` did not take it).
            self._kubectl("exec", "-i", "-n", "vault", pod, "--", "sh", "-c",
                          'read -r key; exec bao operator unseal "$key" >/dev/null',
                          input_=f"{key}\n")
        return True

    def port_forwards(self) -> None:
        import port_for

        targets = {"vault": ("vault", "svc/vault", 8200),
                   "prometheus": ("monitoring", "svc/kube-prometheus-stack-prometheus", 9090),
                   "alertmanager": ("monitoring", "svc/kube-prometheus-stack-alertmanager",
                                    9093),
                   "eso": ("external-secrets", "svc/external-secrets-metrics", 8080)}
        # Marked with the run id like every process the harness starts: if this session
        # dies, the next one's reaper stops them.
        env = {**os.environ, RUN_ID_ENV: self.run_id,
               REGISTRY_ENV: str(self.registry.root)}
        for name, (ns, svc, remote) in targets.items():
            local = port_for.select_random()
            self.forwards.append(subprocess.Popen(
                [self.kubectl, "--kubeconfig", str(self.config.kubeconfig), "port-forward",
                 "-n", ns, "--address", "127.0.0.1", svc, f"{local}:{remote}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                start_new_session=True))
            url = f"http://127.0.0.1:{local}"
            if name == "vault":
                self.config.vault_address = url
            elif name == "eso":
                self.config.eso_metrics = [f"{url}/metrics"]
            else:
                setattr(self.config, name, url)
        self.config.faults = dict(POD_FAULTS)

    def save_record(self) -> None:
        """What `harness backend kind-down` needs after this process is gone."""
        (self.dir / "kind.json").write_text(json.dumps({"name": self.name,
                                                        "run_id": self.run_id}))

    @classmethod
    def from_record(cls, settings: Settings) -> KindEnvironment:
        kind = cls(settings)
        try:
            rec = json.loads((kind.dir / "kind.json").read_text())
        except (OSError, ValueError):
            raise BackendError(f"no kind cluster recorded in {kind.dir}") from None
        kind.name, kind.run_id = rec["name"], rec["run_id"]
        return kind

    def stop_session(self) -> None:
        """This run's port-forwards and processes stopped, the run forgotten."""
        for proc in self.forwards:
            proc.terminate()
        kill_processes(processes_of_run(self.run_id, self.registry.root))
        self.registry.forget(self.run_id)

    def down(self) -> None:
        self.stop_session()
        (self.dir / "kind.json").unlink(missing_ok=True)
        if not self.toolchain.problem("kind"):
            subprocess.run([self.tool("kind"), "delete", "cluster", "--name", self.name],
                           capture_output=True, timeout=300)
