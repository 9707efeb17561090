"""Argo CD v3.2 as processes (the upstream local-development mode): application-
controller and repo-server from the toolchain's multi-call `argocd` binary
(ARGOCD_BINARY_NAME picks the role), Redis from Debian, against the local apiserver with
ARGOCD_FAKE_IN_CLUSTER=true, so Applications target https://kubernetes.default.svc as
they do in a cluster.

What the install manifests would create is applied first: the CRDs (from the Argo CD
module, at the binary's version), the `argocd` namespace, argocd-cm / argocd-rbac-cm /
argocd-cmd-params-cm (+ the empty TLS/SSH/GPG ConfigMaps the settings manager watches),
argocd-secret, and the `default` AppProject.

Found here: the application-controller binds its metrics server to 0.0.0.0 with no flag
to change it (controller/appcontroller.go: `fmt.Sprintf("0.0.0.0:%d", metricsPort)`).
So it runs in a private network namespace (`unshare --net --map-root-user`, no
privileges) that has only a loopback; socat carries its traffic — to the apiserver,
Redis and the repo-server, and from Prometheus to its metrics — over unix sockets.
Inside, the same 127.0.0.1 ports are used, so its kubeconfig is the ordinary one.

The API server (argocd-server, plaintext on 127.0.0.1, its metrics too: it binds them to
--address) is what receives the Git server's push webhooks at /api/webhook — a push is
Synced in seconds instead of waiting up to `timeout.reconciliation` (180 s) — and what
`argocd login` / `argocd app sync` talk to (the admin password: Argo CD's own
`argocd-initial-admin-secret`). The webhook is signed: `webhook.gogs.secret` in
argocd-secret, the same random value in `<state>/argocd/webhook-secret` (0600) for the
Git server.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from harness.backends.local.components.base import Component
from harness.backends.local.components.git import GitServer
from harness.backends.local.components.kube import Kube
from harness.clients import manifests
from harness.errors import HarnessError
from harness.runtime.namespaces import in_private_namespaces
from harness.runtime.pki import write_private
from harness.runtime.probes import hostport, http_ok, tcp_open
from harness.runtime.process import ProcessSpec

NAMESPACE = "argocd"
INSIDE_METRICS_PORT = 8082  # inside the controller's private network namespace
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
WEBHOOK_SECRET_KEY = "webhook.gogs.secret"  # the git server sends Gogs push events


def _cm(name: str, data: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": PART_OF},
            "data": data or {}}


class ArgoCD(Component):
    name = "argocd"
    requires = ("kube", "git")
    port_names = ("argocd.redis", "argocd.repo", "argocd.repo-metrics", "argocd.metrics",
                  "argocd.server", "argocd.server-metrics")
    toolchain = ("argocd", "argocd-crds", "redis", "socat", "kustomize", "helm")

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('argocd.metrics')}/metrics"

    @property
    def has_server(self) -> bool:
        """Whether this environment runs argocd-server: one started by an older harness
        has no port for it until `harness down && harness up`, and is still managed."""
        return "argocd.server" in self.ctx.ports

    @property
    def server_address(self) -> str:
        """The API server: `argocd --server`, the UI, /api/webhook (plaintext)."""
        if not self.has_server:
            raise HarnessError("this environment was started without argocd-server (an "
                               "older harness): `harness down && harness up` adds it")
        return f"http://127.0.0.1:{self.ctx.port('argocd.server')}"

    @property
    def webhook_url(self) -> str:
        return f"{self.server_address}/api/webhook"

    def _metrics(self) -> dict[str, str]:
        return {"argocd-controller-metrics": self.address,
                "argocd-repo-server-metrics":
                    f"http://127.0.0.1:{self.ctx.port('argocd.repo-metrics')}/metrics"}

    def endpoints(self) -> dict[str, str]:
        server = {"argocd-server": self.server_address} if self.has_server else {}
        return {**self._metrics(), **server}

    def scrape_jobs(self) -> list[dict[str, Any]]:
        return [{"job_name": "argocd", "static_configs": [
            {"targets": [hostport(a) for a in self._metrics().values()]}]}]

    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "argocd"

    @property
    def sock_dir(self) -> Path:
        return self._dir / "s"

    @property
    def kubeconfig(self) -> Path:
        return self.ctx.state.root / "kube" / "argocd.kubeconfig"

    @property
    def webhook_secret_file(self) -> Path:
        return self._dir / "webhook-secret"

    def secret_files(self) -> list[Path]:
        return [self.webhook_secret_file]

    # ---- cluster objects ---------------------------------------------------------------
    def crd_files(self) -> list[Path]:
        return [self.ctx.toolchain.file("argocd-crds", f)
                for f in self.ctx.toolchain.spec("argocd-crds").files]

    def write_files(self) -> None:
        for sub in ("s", "tls", "ssh", "gpg", "home", "static"):
            (self._dir / sub).mkdir(parents=True, exist_ok=True)
        if len(str(self.sock_dir / "metrics.sock")) > 100:
            raise HarnessError(f"state dir {self.ctx.state.root} is too long for unix "
                               "sockets (108 bytes): choose a shorter --state-dir")
        admin = yaml.safe_load(self.ctx.state.kubeconfig.read_text())
        for ctx in admin.get("contexts", []):
            ctx["context"]["namespace"] = NAMESPACE
        write_private(self.kubeconfig, yaml.safe_dump(admin).encode())
        if not self.webhook_secret_file.exists():
            write_private(self.webhook_secret_file, secrets.token_hex(32).encode())
        self.register_secrets()
        # Where the Git server announces pushes (it reads this at each push).
        git = self.ctx.require(GitServer)
        git.webhook_config.parent.mkdir(parents=True, exist_ok=True)
        staged = git.webhook_config.with_suffix(".json.tmp")  # a push reads it any time:
        staged.write_text(json.dumps({                          # replaced whole, atomically
            "url": self.webhook_url, "secret_file": str(self.webhook_secret_file),
            "repo_base": git.address}, indent=2))
        os.replace(staged, git.webhook_config)

    def install(self) -> None:
        """Argo CD's CRDs, its ConfigMaps, the default AppProject and its Secret."""
        from harness.clients.kube import dynamic_client

        kube = self.ctx.require(Kube)

        dyn = dynamic_client(kube.api_client())
        manifests.ensure_crds(manifests.load_cached(self.crd_files(),
                                                    self.ctx.toolchain.parsed_dir), dyn)
        objects = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            _cm("argocd-cm", {"timeout.reconciliation": "180s",
                              "application.resourceTrackingMethod": "annotation"}),
            _cm("argocd-rbac-cm"), _cm("argocd-cmd-params-cm"), _cm("argocd-gpg-keys-cm"),
            _cm("argocd-ssh-known-hosts-cm"), _cm("argocd-tls-certs-cm"),
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
             "metadata": {"name": "default", "namespace": NAMESPACE},
             "spec": {"sourceRepos": ["*"],
                      "destinations": [{"server": "*", "namespace": "*"}],
                      "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
        ]
        docs = [manifests.Document("<argocd install>", i + 1, o) for i, o in enumerate(objects)]
        manifests.validate(docs, dyn)
        manifests.apply(docs, dyn)
        self._ensure_secret(kube)

    def _ensure_secret(self, kube: Kube) -> None:
        """argocd-secret with the server key and the webhook secret the Git server signs
        with (added to a Secret of an environment that predates it)."""
        from kubernetes import client

        core = client.CoreV1Api(kube.api_client())
        webhook = self.webhook_secret_file.read_text().strip()
        try:
            existing = core.read_namespaced_secret("argocd-secret", NAMESPACE)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_secret(NAMESPACE, client.V1Secret(
                metadata=client.V1ObjectMeta(name="argocd-secret", labels=PART_OF),
                string_data={"server.secretkey": secrets.token_urlsafe(32),
                             WEBHOOK_SECRET_KEY: webhook}))
            return
        held = (existing.data or {}).get(WEBHOOK_SECRET_KEY, "")
        if base64.b64decode(held).decode(errors="replace") != webhook:
            core.patch_namespaced_secret("argocd-secret", NAMESPACE,
                                         {"stringData": {WEBHOOK_SECRET_KEY: webhook}})

    # ---- processes -----------------------------------------------------------------------
    def _bridges(self) -> dict[str, int]:
        """Unix socket name -> host port the controller reaches through it."""
        kube = self.ctx.require(Kube)
        return {"api": int(hostport(kube.address).rsplit(":", 1)[1]),
                "redis": self.ctx.port("argocd.redis"), "repo": self.ctx.port("argocd.repo")}

    def process_specs(self) -> list[ProcessSpec]:
        argocd = self.bin("argocd", "argocd")
        socat = self.bin("socat", "socat")
        redis_port, repo_port = self.ctx.port("argocd.redis"), self.ctx.port("argocd.repo")
        repo_metrics = self.ctx.port("argocd.repo-metrics")
        home = str(self._dir / "home")
        redis = self.spec("argocd-redis", [
            self.bin("redis", "redis-server"), "--bind", "127.0.0.1", "--port",
            str(redis_port), "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            tcp_open(redis_port), after=())
        repo = self.spec("argocd-repo-server", [
            argocd, f"--port={repo_port}", "--address=127.0.0.1",
            "--metrics-address=127.0.0.1", f"--metrics-port={repo_metrics}",
            f"--redis=127.0.0.1:{redis_port}", "--disable-tls", "--loglevel=info"],
            http_ok(f"http://127.0.0.1:{repo_metrics}/metrics"),
            env={"ARGOCD_BINARY_NAME": "argocd-repo-server", "HOME": home,
                 "ARGOCD_GPG_ENABLED": "false", "ARGOCD_TLS_DATA_PATH": str(self._dir / "tls"),
                 "ARGOCD_SSH_DATA_PATH": str(self._dir / "ssh"),
                 "ARGOCD_GNUPGHOME": str(self._dir / "gpg"),
                 # kustomize and helm as the Argo CD image bundles them (its manifest
                 # generation execs them by name).
                 "PATH": f"{Path(self.bin('kustomize', 'kustomize')).parent}:"
                         f"{Path(self.bin('helm', 'helm')).parent}:/usr/bin:/bin"},
            after=())  # it reaches Redis when a manifest is generated, not to start
        # Host side of the bridges: unix listeners for the controller's outbound traffic,
        # and 127.0.0.1:<metrics> for Prometheus.
        socks = self.sock_dir
        host_side = " & ".join(
            [f"{socat} UNIX-LISTEN:{socks}/{name}.sock,fork,unlink-early "
             f"TCP:127.0.0.1:{port}" for name, port in self._bridges().items()]
            + [f"{socat} TCP-LISTEN:{self.ctx.port('argocd.metrics')},bind=127.0.0.1,"
               f"fork,reuseaddr UNIX-CONNECT:{socks}/metrics.sock"]) + " & wait"
        bridge = self.spec("argocd-bridge", ["sh", "-c", host_side],
                           lambda: all((socks / f"{n}.sock").exists() for n in self._bridges()),
                           after=())
        # The controller and the API server need Redis and the repo-server (the
        # controller through the bridge) and nothing from each other: they start together.
        backends = ("argocd-redis", "argocd-repo-server")
        inside = " && ".join([
            "ip link set lo up",
            *[f"{{ {socat} TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr "
              f"UNIX-CONNECT:{socks}/{name}.sock & }}" for name, port in self._bridges().items()],
            f"{{ {socat} UNIX-LISTEN:{socks}/metrics.sock,fork,unlink-early "
            f"TCP:127.0.0.1:{INSIDE_METRICS_PORT} & }}"])
        controller = self.spec("argocd-application-controller", in_private_namespaces(
            ["net"], inside, [
                argocd, f"--kubeconfig={self.kubeconfig}", f"--namespace={NAMESPACE}",
                f"--redis=127.0.0.1:{redis_port}", f"--repo-server=127.0.0.1:{repo_port}",
                "--repo-server-plaintext", f"--metrics-port={INSIDE_METRICS_PORT}",
                "--loglevel=info", "--self-heal-timeout-seconds=2"],
            "the Argo CD controller (its metrics listen on 0.0.0.0)"),
            http_ok(self.address),
            env={"ARGOCD_BINARY_NAME": "argocd-application-controller", "HOME": home,
                 "ARGOCD_FAKE_IN_CLUSTER": "true", "KUBECONFIG": str(self.kubeconfig),
                 "PATH": "/usr/sbin:/usr/bin:/bin"},
            after=(*backends, "argocd-bridge"))
        if not self.has_server:
            return [redis, repo, bridge, controller]
        server_port = self.ctx.port("argocd.server")
        server = self.spec("argocd-server", [
            argocd, f"--kubeconfig={self.kubeconfig}", f"--namespace={NAMESPACE}",
            "--insecure", "--address=127.0.0.1", f"--port={server_port}",
            # the metrics listener binds --address too (server.go: startListener)
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.ctx.port('argocd.server-metrics')}",
            f"--redis=127.0.0.1:{redis_port}", f"--repo-server=127.0.0.1:{repo_port}",
            "--repo-server-plaintext", f"--staticassets={self._dir / 'static'}",
            "--loglevel=info"],
            http_ok(f"{self.server_address}/healthz"),
            env={"ARGOCD_BINARY_NAME": "argocd-server", "HOME": home,
                 "ARGOCD_FAKE_IN_CLUSTER": "true", "KUBECONFIG": str(self.kubeconfig),
                 "PATH": "/usr/bin:/bin"},
            after=backends)
        return [redis, repo, bridge, controller, server]
