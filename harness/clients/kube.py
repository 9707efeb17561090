"""A Kubernetes client bound to one environment: typed APIs plus the runbook's kubectl."""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

from kubernetes import client, config

from harness.errors import HarnessError
from harness.runtime.redact import redact
from harness.wait import WaitTimeout, record_wait


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

    def watch_secret(self, namespace: str, name: str,
                     check: Callable[[client.V1Secret | None], str | None],
                     timeout: float, description: str) -> None:
        """Wait, watching (not polling), until `check` of the Secret (None while it does
        not exist) returns None; otherwise it returns why not, which a time-out reports.
        Each change is seen as the apiserver sends it. Why not a poll: a 50 ms poll of
        one Secret cost ~14% of a core (apiserver, etcd, this client), per waiting test,
        on two cores shared by four workers. A broken stream is opened again."""
        from kubernetes import watch

        started = time.monotonic()
        deadline = started + timeout
        last = check(self._secret_or_none(namespace, name))
        while last is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                record_wait(description, time.monotonic() - started, "timeout")
                raise WaitTimeout(redact(
                    f"{description}: not true within {timeout:.1f}s (last: {last})"))
            stream = watch.Watch()
            try:
                for event in stream.stream(
                        self.core.list_namespaced_secret, namespace,
                        field_selector=f"metadata.name={name}",
                        timeout_seconds=max(1, int(remaining + 0.999)),
                        _request_timeout=remaining + 10):
                    obj = None if event["type"] == "DELETED" else event["object"]
                    last = check(obj if isinstance(obj, client.V1Secret) else None)
                    if last is None or time.monotonic() >= deadline:
                        break
            except (client.ApiException, OSError, ValueError) as exc:
                # urllib3's errors are OSErrors; a 410 Gone: the watch starts over
                last = f"watch: {type(exc).__name__}"
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            finally:
                stream.stop()
        record_wait(description, time.monotonic() - started, "passed")

    def _secret_or_none(self, namespace: str, name: str) -> client.V1Secret | None:
        try:
            return self.core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

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


# A path that can never exist ("/dev/null" is no directory): the library then starts
# from an empty discovery cache.
_NO_CACHE_FILE = "/dev/null/discovery.json"


@functools.cache
def _memory_discoverer() -> type:
    from kubernetes.dynamic.discovery import LazyDiscoverer

    class MemoryDiscoverer(LazyDiscoverer):
        def _write_cache(self) -> None:
            pass

    return MemoryDiscoverer


def dynamic_client(api_client: Any) -> Any:
    """A kubernetes DynamicClient whose discovery stays in memory. The library's default
    writes /tmp/osrcp-<hash of host:port>.json and reads it back in any later process:
    one file left per environment, and a later environment given the same port started
    from the earlier one's API groups."""
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api_client, cache_file=_NO_CACHE_FILE,
                         discoverer=_memory_discoverer())
