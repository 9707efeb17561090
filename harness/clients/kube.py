"""A Kubernetes client bound to one environment: typed APIs plus the runbook's kubectl."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from functools import cached_property
from typing import Any

from kubernetes import client, config

from harness.runtime.redact import redact


class KubeClient:
    def __init__(self, kubeconfig: str, kubectl: str) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        self.api_client = config.new_client_from_config(config_file=kubeconfig)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client)

    @cached_property
    def rbac(self) -> client.RbacAuthorizationV1Api:
        return client.RbacAuthorizationV1Api(self.api_client)

    @cached_property
    def authz(self) -> client.AuthorizationV1Api:
        return client.AuthorizationV1Api(self.api_client)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    @cached_property
    def coordination(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self.api_client)

    def get_custom(self, group: str, version: str, namespace: str, plural: str,
                   name: str) -> dict[str, Any]:
        """One namespaced custom object (ExternalSecret, Application...) as a dict."""
        obj = self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        if not isinstance(obj, dict):
            raise TypeError(f"{plural} {namespace}/{name}: unexpected {type(obj).__name__}")
        return obj

    def list_custom(self, group: str, version: str, namespace: str,
                    plural: str) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(group, version, namespace, plural)
        if not isinstance(listed, dict):
            raise TypeError(f"{plural} in {namespace}: unexpected {type(listed).__name__}")
        return list(listed.get("items", []))

    @staticmethod
    def absent(read: Callable[..., object], *args: str) -> bool:
        """True when reading the object answers 404 (deleted, garbage-collected)."""
        try:
            read(*args)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against this environment, as an operator would type it."""
        proc = subprocess.run([self.kubectl_path, "--kubeconfig", self.kubeconfig, *args],
                              capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(redact(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"))
        return proc
