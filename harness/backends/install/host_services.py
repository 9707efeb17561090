"""What the harness hosts for a chart-installed cluster, and how Argo CD gets to it: the
Git server (the platform repository, credentials required) and the alert webhook
receiver run on the host's 127.0.0.1, and are published in-cluster as Services
(`git.heracles`, `alert-receiver.heracles`) by whatever path the backend has into the
cluster (`publish`, with `clients.kube.publish_service`): the real node's bridge (pods),
or the private Docker daemon's namespace (kind). Then the spec's Argo CD steps:
`argocd login`, `argocd repo add`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.backends.existing import BackendError
from harness.backends.install.environment import TARGETS, ChartsEnvironment, Step
from harness.backends.local.components.git import IN_CLUSTER_URL, REPO
from harness.runtime.probes import http_ok
from harness.runtime.process import REGISTRY_ENV, RUN_ID_ENV
from harness.runtime.redact import REDACTOR
from harness.wait import eventually

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.clients.alerts import ReceivedAlerts

HOST_SERVICES = "heracles"  # the namespace of the harness's own services, published
RECEIVER_URL = f"http://alert-receiver.{HOST_SERVICES}.svc.cluster.local/alerts"


class ReceivedFile:
    """The notifications the harness's receiver wrote, one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def notifications(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()
                if line.strip()]


class HostServices(ChartsEnvironment):
    """A chart backend with the harness's Git server and alert receiver in-cluster."""

    receiver_url = RECEIVER_URL

    def local(self) -> LocalEnvironment:
        """The local components this backend runs on the host (the Git server among)."""
        raise NotImplementedError

    def publish(self, namespace: str, service: str, host_port: int, port: int) -> str:
        """127.0.0.1:host_port on the host as an in-cluster Service."""
        raise NotImplementedError

    @property
    def received_file(self) -> Path:
        return self.dir / "alerts" / "received.jsonl"

    def publish_host_services(self) -> None:
        """The Git server and the webhook receiver, as Services Argo CD and Alertmanager
        reach by DNS."""
        [port] = self.registry.ports.allocate(self.run_id, 1)
        self.received_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, RUN_ID_ENV: self.run_id, REGISTRY_ENV: str(self.registry.root)}
        self.forwards.append(subprocess.Popen(
            [sys.executable, "-m", "harness.daemons.receiver", "--listen",
             f"127.0.0.1:{port}", "--out", str(self.received_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True))
        eventually(lambda: http_ok(f"http://127.0.0.1:{port}/healthz")(), timeout=30,
                   description="the alert receiver answers")
        self.publish(HOST_SERVICES, "alert-receiver", port, 80)
        git = self.local().attach().git
        self.publish(HOST_SERVICES, "git", int(git.address.rsplit(":", 1)[1]), 80)

    def argocd_steps(self) -> list[Step]:
        return [Step("argocd login, with the password from argocd-initial-admin-secret",
                     action=self.argocd_login),
                Step(f"argocd repo add {IN_CLUSTER_URL}/{REPO} --username --password",
                     action=self.argocd_repo_add)]

    def argocd(self, *args: str) -> str:
        """The `argocd` CLI against the API server exposed on 127.0.0.1; its config in
        the state dir, nothing in ~/.config."""
        run = subprocess.run([self.tool("argocd"), "--config", str(self.dir / "argocd.cfg"),
                              *args], capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise BackendError(f"argocd {args[0]}: "
                               f"{REDACTOR.redact((run.stderr or run.stdout).strip())}")
        return run.stdout

    def argocd_login(self) -> None:
        encoded = eventually(lambda: self.run_kubectl(
            "get", "secret", "-n", "argocd", "argocd-initial-admin-secret", "-o",
            "jsonpath={.data.password}") or None, timeout=120, retry_on=(BackendError,),
            error=BackendError, description="argocd-initial-admin-secret")
        password = base64.b64decode(encoded).decode()
        REDACTOR.add(password)
        address = self.forward(*TARGETS["argocd"])
        eventually(lambda: self.argocd("login", address, "--username", "admin",
                                       "--password", password, "--insecure") or True,
                   timeout=120, retry_on=(BackendError,), error=BackendError,
                   description="argocd login")

    def argocd_repo_add(self) -> None:
        creds = self.local().attach().git.credentials()
        if creds is None:
            raise BackendError("the Git server runs without credentials")
        self.argocd("repo", "add", f"{IN_CLUSTER_URL}/{REPO}", "--username", creds[0],
                    "--password", creds[1])

    def alerts(self) -> ReceivedAlerts:
        from harness.clients.alerts import ReceivedAlerts

        return ReceivedAlerts(ReceivedFile(self.received_file))

    def git_url(self) -> str:
        return self.local().attach().git.url()
