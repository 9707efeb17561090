"""The install plan both chart backends run: render (helm lint + template), CRDs, the
releases in order, Vault's init and unseal through `kubectl exec` (the runbook's way),
then the platform's Services reached from the host. A backend subclasses
`ChartsEnvironment` and says only how its cluster comes up (`cluster_steps`), how a
Service is reached from 127.0.0.1 (`forward`) and how it goes away (`down`).

Once up, the suites see the result exactly as an existing cluster.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING, Any

import yaml

from harness.backends.existing import BackendError, ExistingConfig, ExistingEnvironment
from harness.backends.install import monitoring
from harness.backends.install.charts import (
    POD_FAULTS,
    VAULT_TLS_NAMES,
    VAULT_TLS_SECRET,
    Chart,
    charts,
    deep_merge,
    images_of,
    lookup,
)
from harness.errors import HarnessError
from harness.runtime.pki import PKI, write_private
from harness.runtime.probes import http_ok
from harness.runtime.redact import REDACTOR
from harness.runtime.registry import RunRegistry, kill_processes, new_run_id, processes_of_run
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.vault_config.eso_grants import recorded_grants, with_read_grants
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.clients.kube import KubeClient
    from harness.faults.kube import KubeFaults

KUBE_VERSION = "1.34.0"

# What the host reaches, per capability: (namespace, Service, port).
TARGETS = {"vault": ("vault", "vault", 8200),
           "eso": ("external-secrets", "external-secrets-metrics", 8080),
           "prometheus": ("monitoring", "prometheus-server", 80),
           "alertmanager": ("monitoring", "prometheus-alertmanager", 9093),
           "argocd": ("argocd", "argocd-server", 443)}


class KindUnavailable(HarnessError):
    """The backend cannot run on this machine; the message says exactly why."""


@dataclass
class Step:
    name: str
    argv: list[str] = field(default_factory=list)
    action: Callable[[], None] | None = None

    def describe(self) -> str:
        return " ".join(self.argv) if self.argv else f"({self.name})"


class ChartsEnvironment(ExistingEnvironment):
    """The platform from its charts on some cluster; subclasses bring the cluster."""

    backend = "charts"
    release_names: tuple[str, ...] | None = None  # None: every release
    post_render: tuple[str, ...] = ()  # transforms added to every release's
    # Where Alertmanager in the cluster delivers to the harness's receiver (None: the
    # backend has no way to host one).
    receiver_url: str | None = None

    def __init__(self, settings: Settings | None = None, toolchain: Toolchain | None = None,
                 vault_overrides: dict[str, Any] | None = None) -> None:
        settings = settings or Settings()
        self.dir = settings.state_dir / self.backend
        cfg = ExistingConfig(source=self.dir / "existing.yaml",
                             kubeconfig=self.dir / "kubeconfig",
                             vault_address="http://127.0.0.1:0")
        super().__init__(cfg, settings, toolchain)
        if vault_overrides is None and settings.vault_values is not None:
            # the team's own Vault values for the chart (image pinned regardless): a values
            # file, or what an Argo CD Application installing the chart gives it
            from harness.vault_config.values import helm_values

            vault_overrides = helm_values(settings.vault_values)
        self.profile = settings.profile
        self.charts = [c for c in charts(vault_overrides, self.profile)
                       if self.release_names is None or c.release in self.release_names]
        for chart in self.charts:
            chart.post_render = (*chart.post_render, *self.post_render)
        self.dev_mode = bool(lookup(self.vault_chart.values, "server.dev.enabled"))
        if self.dev_mode:
            token = secrets.token_urlsafe(24)
            REDACTOR.add(token)
            self.vault_chart.values["server"]["dev"]["devRootToken"] = token
        self.tls = not self.dev_mode and lookup(self.vault_chart.values,
                                                "global.tlsDisable") is False
        if prom := self.chart("prometheus"):
            prom.values = deep_merge(prom.values, monitoring.values(
                rules=[self.settings.fixtures_dir / "observability"],
                time_scale=self.settings.time_scale, receiver_url=self.receiver_url,
                tls=self.tls))
        self.forwards: list[subprocess.Popen[bytes]] = []
        self._render: dict[str, Any] | None = None
        self.run_id = new_run_id()
        self.registry = RunRegistry(self.settings.registry_dir)

    @property
    def vault_chart(self) -> Chart:
        return next(c for c in self.charts if c.release == "vault")

    def chart(self, release: str) -> Chart | None:
        return next((c for c in self.charts if c.release == release), None)

    def tool(self, component: str, name: str | None = None) -> str:
        problem = self.toolchain.problem(component)
        if problem:
            raise BackendError(f"{problem}; run: harness toolchain install --only {component}")
        return str(self.toolchain.binary(component, name or component))

    # ---- render: everything that needs no cluster ----------------------------------------
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
                     "--post-renderer-args", "harness.backends.install.postrender",
                     "--post-renderer-args", ",".join(chart.post_render)]
        return args

    def render_extra(self, out: Path) -> set[str]:
        """What the backend renders besides the charts; returns images it needs too."""
        return set()

    def render(self, out: Path | None = None) -> dict[str, Any]:
        """Values and rendered manifests under out (default: the backend's state dir),
        with `helm lint` and `helm template` run on each chart. Returns what the plan
        needs: files, the images every object runs. Values and manifests are 0600 (the
        dev root token is in them, as the chart puts it in the Pod's env)."""
        out = out or self.dir
        out.mkdir(parents=True, exist_ok=True)
        helm = self.tool("helm")
        extra = self.render_extra(out)
        rendered: dict[str, list[dict[str, Any]]] = {}
        for chart in self.charts:
            root = self.chart_dir(chart, out / "charts")
            values_file = out / "values" / f"{chart.release}.yaml"
            write_private(values_file, yaml.safe_dump(chart.values, sort_keys=False).encode())
            lint = subprocess.run([helm, "lint", str(root), "--values", str(values_file),
                                   "--kube-version", KUBE_VERSION], capture_output=True,
                                  text=True, env=self.helm_env(), timeout=120)
            if lint.returncode != 0:
                raise BackendError(f"helm lint {chart.release}: {lint.stdout[-2000:]}"
                                   f"{lint.stderr[-2000:]}")
            tpl = subprocess.run([helm, "template", *self.helm_args(chart, root, values_file),
                                  "--kube-version", KUBE_VERSION], capture_output=True,
                                 text=True, env=self.helm_env(), timeout=120)
            if tpl.returncode != 0:
                raise BackendError(f"helm template {chart.release}: {tpl.stderr.strip()}")
            write_private(out / "rendered" / f"{chart.release}.yaml", tpl.stdout.encode())
            rendered[chart.release] = [d for d in yaml.safe_load_all(tpl.stdout)
                                       if isinstance(d, dict)]
        images = sorted({*extra, *(i for docs in rendered.values() for i in images_of(docs))})
        self._render = {"dir": out, "rendered": rendered, "images": images}
        return self._render

    @property
    def images(self) -> list[str]:
        if self._render is None:
            self._render = self.render()
        return list(self._render["images"])

    # ---- the plan ----------------------------------------------------------------------
    CRD_TOOLS = ("prometheus-operator-crds", "argocd-crds")

    def crd_files(self) -> list[Path]:
        """Every CRD the charts' objects need, at the toolchain's versions."""
        return [self.toolchain.file("external-secrets", "crds/bundle.yaml"),
                *[self.toolchain.file(t, f) for t in self.CRD_TOOLS
                  for f in self.toolchain.spec(t).files]]

    def cluster_steps(self) -> list[Step]:
        """The backend's own steps up to a cluster the charts can go on."""
        raise NotImplementedError

    def plan(self) -> list[Step]:
        kubectl, kc = self.kubectl, str(self.config.kubeconfig)
        steps = self.cluster_steps()
        steps.append(Step("install CRDs at the toolchain's versions",
                          [kubectl, "--kubeconfig", kc, "apply", "--server-side",
                           *[a for f in self.crd_files() for a in ("-f", str(f))]]))
        if self.tls:
            steps.append(Step("vault: TLS certificate for its Service and Pods (Secret "
                              f"{VAULT_TLS_SECRET})", action=self.vault_tls))
        helm = self.tool("helm")
        for chart in self.charts:
            root = self.dir / "charts" / chart.release / chart.archive.removesuffix(".tgz")
            argv = [helm, "upgrade", "--install", "--create-namespace", "--kubeconfig", kc,
                    *self.helm_args(chart, root, self.dir / "values" / f"{chart.release}.yaml")]
            if chart.wait:
                argv += ["--wait", "--timeout", "5m"]
            steps.append(Step(f"helm install {chart.release}", argv))
            if chart.release == "vault":
                steps.append(Step(
                    "vault: dev-mode Pod ready, configure kubernetes auth, seed" if
                    self.dev_mode else "vault: operator init (5 shares, threshold 3) on "
                    "vault-0, unseal every pod, configure kubernetes auth, seed",
                    action=self.init_vault))
                if self.chart("prometheus"):
                    steps.append(Step("vault: a token that reads sys/metrics only, for "
                                      "Prometheus (Secret monitoring/"
                                      f"{monitoring.METRICS_SECRET})",
                                      action=self.metrics_token))
            if chart.release == "argocd":
                steps += self.argocd_steps()
        steps.append(Step("reach Vault, ESO metrics, Prometheus, Alertmanager from "
                          "127.0.0.1", action=self.port_forwards))
        return steps

    def step_env(self) -> dict[str, str]:
        """The environment of the plan's commands (kind: its Docker daemon too)."""
        return self.helm_env()

    def run_steps(self, steps: list[Step], progress: Callable[[str], None]) -> None:
        for step in steps:
            progress(step.name)
            if step.action:
                step.action()
                continue
            run = subprocess.run(step.argv, capture_output=True, text=True,
                                 env=self.step_env(), timeout=900)
            if run.returncode != 0:
                said = (run.stderr or run.stdout).strip()[-2000:]
                raise BackendError(f"{self.backend} backend step {step.name!r} failed: "
                                   f"{REDACTOR.redact(said)}")

    def up(self, progress: Callable[[str], None] = lambda _m: None) -> ChartsEnvironment:
        self.render(self.dir)
        steps = self.plan()
        progress(steps[0].name)
        if steps[0].action:
            steps[0].action()  # preflight: KindUnavailable -> skip, before anything runs
        self.registry.register(self.run_id, self.dir, "session")
        self.save_record()
        self.run_steps(steps[1:], progress)
        super().up()
        return self

    # ---- Vault: the runbook's way -----------------------------------------------------
    def run_kubectl(self, *args: str, input_: str | None = None) -> str:
        run = subprocess.run([self.kubectl, "--kubeconfig", str(self.config.kubeconfig),
                              *args], capture_output=True, text=True, input=input_,
                             timeout=120)
        if run.returncode != 0:
            raise BackendError(f"kubectl {args[0]}: {REDACTOR.redact(run.stderr.strip())}")
        return run.stdout

    def run_bao(self, pod: str, token: str, *args: str, stdin: str = "") -> str:
        """`bao ...` inside a Vault pod; the token goes over stdin, never into argv."""
        script = 'read -r BAO_TOKEN; export BAO_TOKEN; exec bao "$@"'
        return self.run_kubectl("exec", "-i", "-n", "vault", pod, "--", "sh", "-c", script,
                             "bao", *args, input_=f"{token}\n{stdin}")

    def vault_tls(self) -> None:
        """A serving certificate for every name Vault is reached by (its Services, each
        Pod through vault-internal, 127.0.0.1 for the host's forward), signed by the
        session's CA, as the Secret the chart's extraVolumes mount."""
        pki = PKI(self.dir / "pki")
        pair = pki.issue("vault", *VAULT_TLS_NAMES)
        self.config.vault_ca_cert = pki.ca_cert
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                  "metadata": {"name": VAULT_TLS_SECRET, "namespace": "vault"},
                  "stringData": {"tls.crt": pair.cert.read_text(),
                                 "tls.key": pair.key.read_text(),
                                 "ca.crt": pki.ca_cert.read_text()}}
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vault"}}
        self.run_kubectl("apply", "-f", "-", input_=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [ns, secret]}))

    def vault_pods(self) -> list[str]:
        replicas = 1 if self.dev_mode else int(
            lookup(self.vault_chart.values, "server.ha.replicas") or 1)
        return [f"vault-{i}" for i in range(replicas)]

    def _running(self, pod: str) -> bool:
        # `kubectl wait` on a Pod the StatefulSet has not created yet fails at once
        phase = self.run_kubectl("get", "-n", "vault", f"pod/{pod}", "-o",
                              "jsonpath={.status.phase}")
        if phase != "Running":
            raise BackendError(f"{pod} is {phase or 'not created yet'}")
        return True

    def init_vault(self) -> None:
        """The runbook's init + unseal with the ORIGINAL keys (kept 0600 in the state
        dir) — or, in dev mode, the dev server's root token — then what ESO needs: KV v2
        at secret/, kubernetes auth reviewed by Vault's own ServiceAccount token from
        inside the cluster, the spec's policy and role, and the runbook's seeds."""
        from harness.backends.local.components.eso import VAULT_POLICY, VAULT_ROLE
        from harness.vault_config.seed import parse_seed

        pods = self.vault_pods()
        for pod in pods:
            eventually(functools.partial(self._running, pod), timeout=300, interval=1,
                       retry_on=(BackendError,), error=BackendError,
                       description=f"Vault Pod {pod} Running")
        if self.dev_mode:
            token = str(self.vault_chart.values["server"]["dev"]["devRootToken"])
            eventually(lambda: self.run_bao(pods[0], token, "status") is not None, timeout=120,
                       retry_on=(BackendError,), error=BackendError,
                       description="the dev-mode Vault answers")
        else:
            init = json.loads(self.run_kubectl("exec", "-n", "vault", pods[0], "--", "bao",
                                            "operator", "init", "-key-shares=5",
                                            "-key-threshold=3", "-format=json"))
            REDACTOR.add(init["root_token"], *init["unseal_keys_b64"])
            write_private(self.dir / "vault-init.json", json.dumps(init).encode())
            token = init["root_token"]
            self.unseal_pod(pods[0])
            for pod in pods[1:]:  # "not initialized" until retry_join has joined
                eventually(functools.partial(self.unseal_pod, pod), timeout=120,
                           retry_on=(BackendError,), error=BackendError,
                           description=f"{pod} joins the raft cluster and unseals")
            self.run_bao(pods[0], token, "secrets", "enable", "-path=secret", "kv-v2")
        write_private(self.dir / "root-token", token.encode())
        fixtures = self.settings.fixtures_dir
        self.run_bao(pods[0], token, "auth", "enable", "kubernetes")
        self.run_bao(pods[0], token, "write", "auth/kubernetes/config",
                  "kubernetes_host=https://kubernetes.default.svc:443")
        # ESO's policy, with the paths `harness eso grant` added to this environment
        policy, _ = with_read_grants(
            (fixtures / "vault" / "policies" / "external-secrets.hcl").read_text(),
            recorded_grants(self.settings.state_dir))
        self.run_bao(pods[0], token, "policy", "write", VAULT_POLICY, "-", stdin=policy)
        self.run_bao(pods[0], token, "write", f"auth/kubernetes/role/{VAULT_ROLE}",
                  "bound_service_account_names=external-secrets",
                  "bound_service_account_namespaces=external-secrets",
                  f"policies={VAULT_POLICY}", "ttl=1h")
        for mount, path, values in parse_seed(fixtures / "vault" / "seed.txt"):
            self.run_bao(pods[0], token, "kv", "put", f"-mount={mount}", path, "-",
                      stdin=json.dumps(values))  # values over stdin, never in argv
        self.config.vault_token_file = self.dir / "root-token"

    def unseal_pod(self, pod: str) -> bool:
        """The runbook's unseal of one Vault Pod with the original keys (kept 0600 in
        the state dir), through `kubectl exec`. Dev mode needs none."""
        if self.dev_mode:
            return True
        init = json.loads((self.dir / "vault-init.json").read_text())
        for key in init["unseal_keys_b64"][:3]:
            # The key over stdin, never in argv on the host (found when this first ran,
            # against the real node: `bao operator unseal -` did not take it).
            self.run_kubectl("exec", "-i", "-n", "vault", pod, "--", "sh", "-c",
                          'read -r key; exec bao operator unseal "$key" >/dev/null',
                          input_=f"{key}\n")
        return True

    def metrics_token(self) -> None:
        """What job="vault" scrapes with: a periodic orphan token whose policy reads
        sys/metrics and nothing else, as a Secret Prometheus mounts (and, with TLS, the
        CA that signed Vault's certificate)."""
        pod, token = self.vault_pods()[0], (self.dir / "root-token").read_text().strip()
        self.run_bao(pod, token, "policy", "write", monitoring.METRICS_POLICY, "-",
                  stdin='path "sys/metrics" {\n  capabilities = ["read"]\n}\n')
        minted = json.loads(self.run_bao(
            pod, token, "token", "create", "-orphan", f"-policy={monitoring.METRICS_POLICY}",
            "-period=768h", "-display-name=prometheus", "-format=json"))
        metrics = minted["auth"]["client_token"]
        REDACTOR.add(metrics)
        items: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {
                "name": monitoring.METRICS_SECRET, "namespace": "monitoring"},
             "stringData": {"token": metrics}}]
        if self.tls:
            items.append({"apiVersion": "v1", "kind": "Secret", "metadata": {
                "name": "vault-tls-ca", "namespace": "monitoring"},
                "stringData": {"ca.crt": (self.dir / "pki" / "ca.crt").read_text()}})
        self.run_kubectl("apply", "-f", "-", input_=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": items}))

    def argocd_steps(self) -> list[Step]:
        """What follows the Argo CD chart; the pods backend has the spec's steps."""
        return []

    # ---- reaching the platform from the host ---------------------------------------------
    def forward(self, namespace: str, service: str, port: int) -> str:
        """`127.0.0.1:<port>` on the host that reaches the Service."""
        raise NotImplementedError

    def port_forwards(self) -> None:
        installed = {c.release for c in self.charts}
        scheme = "https" if self.tls else "http"
        ns, svc, port = TARGETS["vault"]
        if not self.dev_mode:
            # the active node (service registration's label): a standby may answer a
            # request with a redirect to its leader's Pod IP, which the host cannot use
            svc = "vault-active"
        self.config.vault_address = f"{scheme}://{self.forward(ns, svc, port)}"
        # kube-proxy follows the active node's label within a moment: wait for it
        eventually(http_ok(f"{self.config.vault_address}/v1/sys/health",
                           ca=self.config.vault_ca_cert), timeout=60, error=BackendError,
                   description=f"Vault answers at {self.config.vault_address} ({svc})")
        if "external-secrets" in installed:
            ns, svc, port = TARGETS["eso"]
            self.config.eso_metrics = [f"http://{self.forward(ns, svc, port)}/metrics"]
        for name in ("prometheus", "alertmanager"):
            ns, svc, port = TARGETS[name]
            setattr(self.config, name, f"http://{self.forward(ns, svc, port)}"
                    if "prometheus" in installed else None)
        self.config.faults = dict(POD_FAULTS)

    def faults(self, kube: KubeClient) -> KubeFaults:
        """Kubernetes faults, and a replaced Vault Pod unsealed with the original keys
        through `kubectl exec`, as the runbook says to."""
        from harness.faults.kube import KubeFaults

        return KubeFaults(kube, self.config.faults, unseal=self.unseal_pod)

    # ---- records and teardown --------------------------------------------------------
    def record_extra(self) -> dict[str, Any]:
        return {}

    def save_record(self) -> None:
        """What a later `down` needs after this process is gone."""
        (self.dir / f"{self.backend}.json").write_text(json.dumps(
            {"run_id": self.run_id, "profile": self.profile, **self.record_extra()}))

    def load_record(self) -> dict[str, Any]:
        try:
            rec: dict[str, Any] = json.loads((self.dir / f"{self.backend}.json").read_text())
        except (OSError, ValueError):
            raise BackendError(f"no {self.backend} environment recorded in {self.dir}"
                               ) from None
        self.run_id = rec["run_id"]
        return rec

    @classmethod
    def from_record(cls, settings: Settings) -> ChartsEnvironment:
        """The environment an earlier `up` recorded in this state dir (its run, its
        endpoints): what `down`, `status` and `env` act on."""
        recorded = settings.state_dir / cls.backend / f"{cls.backend}.json"
        try:
            profile = json.loads(recorded.read_text()).get("profile", settings.profile)
        except (OSError, ValueError):
            raise BackendError(f"no {cls.backend} environment recorded in "
                               f"{recorded.parent}") from None
        env = cls(settings.with_(profile=profile))  # the profile it runs, not the default
        env.load_record()
        existing = env.dir / "existing.yaml"
        if existing.is_file():
            env.config = ExistingConfig.load(existing)
        return env

    def attach(self) -> ChartsEnvironment:
        """Connect to what an earlier `up` installed (checks, starts nothing)."""
        ExistingEnvironment.up(self)
        return self

    def detach(self) -> None:
        """Leave the environment running after this process (`harness up`)."""
        self.registry.set_mode(self.run_id, "detached")

    def running(self) -> bool:
        """Whether the recorded run is still alive (its owner or detached)."""
        return self.registry.get(self.run_id) is not None

    def env_exports(self) -> str:
        """`export` lines for a shell: the cluster, Vault (the active node), the
        endpoints. The token is never printed: the shell reads its 0600 file."""
        cfg = self.config
        kubectl = self.toolchain.binary("kubernetes", "kubectl")
        bao = self.toolchain.binary("openbao", "bao")
        lines = [f"export KUBECONFIG={cfg.kubeconfig}", f"export PATH={kubectl.parent}:"
                 f"{bao.parent}:$PATH", "unset BAO_ADDR BAO_TOKEN BAO_CACERT",
                 f"export VAULT_ADDR={cfg.vault_address}"]
        if cfg.vault_token_file:
            lines.append(f'export VAULT_TOKEN="$(cat {cfg.vault_token_file})"')
        if cfg.vault_ca_cert:
            lines.append(f"export VAULT_CACERT={cfg.vault_ca_cert}")
        for name, var in (("prometheus", "HERACLES_PROMETHEUS_URL"),
                          ("alertmanager", "HERACLES_ALERTMANAGER_URL")):
            if url := getattr(cfg, name):
                lines.append(f"export {var}={url}")
        return "\n".join(lines)

    def stop_session(self) -> None:
        """This run's port-forwards and processes stopped, the run forgotten."""
        for proc in self.forwards:
            proc.terminate()
        kill_processes(processes_of_run(self.run_id, self.registry.root))
        self.registry.forget(self.run_id)
