"""A Kubernetes client bound to one environment: typed APIs plus the runbook's kubectl."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable
from functools import cached_property
from typing import Any

from kubernetes import client, config

from harness.errors import HarnessError
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


def publish_service(api_client: Any, namespace: str, service: str, ip: str, port: int,
                    target_port: int) -> str:
    """`service.namespace.svc.cluster.local:port` reaching `ip:target_port`: a Service
    without selector and its Endpoints. Idempotent; returns the in-cluster authority."""
    core = client.CoreV1Api(api_client)
    meta = client.V1ObjectMeta(name=service, namespace=namespace,
                               labels={"app.kubernetes.io/managed-by": "heracles-harness"})
    objects: list[tuple[Any, Any]] = [
        (core.create_namespace, client.V1Namespace(
            metadata=client.V1ObjectMeta(name=namespace))),
        (functools.partial(core.create_namespaced_service, namespace), client.V1Service(
            metadata=meta, spec=client.V1ServiceSpec(ports=[client.V1ServicePort(
                name="tcp", port=port, target_port=target_port)]))),
        (functools.partial(core.create_namespaced_endpoints, namespace),
         client.V1Endpoints(metadata=meta, subsets=[client.V1EndpointSubset(
             addresses=[client.V1EndpointAddress(ip=ip)],
             ports=[client.CoreV1EndpointPort(name="tcp", port=target_port)])]))]
    for create, body in objects:
        try:
            create(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise HarnessError(f"publishing {namespace}/{service}: {exc.reason}"
                                   ) from None
    return f"{service}.{namespace}.svc.cluster.local:{port}"
