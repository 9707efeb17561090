"""Losing the API server in the middle of `harness apply` (issue 13, case 7): one line
saying how many objects were applied of how many, which one failed and why, and that a
re-run is safe — not urllib3's traceback.

In the unit run the server is a real HTTP server on 127.0.0.1 that the Kubernetes
DynamicClient talks to (discovery, dry runs, server-side apply PATCHes); after answering
some applies it closes its listening socket (connection refused) or drops a request
without an answer (connection aborted), as a stopping kube-apiserver does. The `slow`
test does it to a real kube-apiserver (the toolchain's, ~7 s here), killed mid-apply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from harness.clients import manifests
from harness.clients.kube import dynamic_client as harness_dynamic_client
from harness.clients.manifests import ApplyInterrupted, Document

API_V1 = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
    {"name": "configmaps", "singularName": "configmap", "namespaced": True,
     "kind": "ConfigMap", "verbs": ["create", "get", "list", "patch", "delete"]},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False,
     "kind": "Namespace", "verbs": ["create", "get", "list", "patch", "delete"]}]}
DISCOVERY = {
    "/version": {"major": "1", "minor": "34", "gitVersion": "v1.34.4"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": API_V1,
}


@dataclass
class FakeApiServer:
    """Answers discovery and server-side applies; after `applies_before_loss` real
    (not dry-run) applies it goes away the way `how` says."""

    applies_before_loss: int
    how: str  # "refuse": listening socket closed; "drop": the request gets no answer
    applied: list[str] = field(default_factory=list)
    gone: bool = False
    httpd: HTTPServer | None = None

    def go_away(self) -> None:
        """Close the listening socket: from now on a connection is refused."""
        self.gone = True
        assert self.httpd is not None
        self.httpd.socket.close()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads the results, not an access log."""

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in DISCOVERY:
                    self._json(DISCOVERY[path])
                else:
                    self.send_error(404)

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if "dryRun=All" in self.path:
                    self._json(body)
                    return
                if fake.how == "drop" and len(fake.applied) == fake.applies_before_loss:
                    fake.go_away()
                    self.close_connection = True
                    return  # this request never gets an answer
                fake.applied.append(body["metadata"]["name"])
                if fake.how == "refuse" and len(fake.applied) == fake.applies_before_loss:
                    fake.go_away()  # before answering: the next request cannot connect
                self._json(body)

        return Handler

    def serve(self) -> Iterator[str]:
        """Serve one request at a time until gone; yields the address."""
        self.httpd = HTTPServer(("127.0.0.1", 0), self.handler())
        self.httpd.timeout = 0.2
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set() and not self.gone:
                self.httpd.handle_request()  # type: ignore[union-attr]

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self.httpd.server_address[1]}"
        finally:
            stop.set()
            thread.join(5)
            self.httpd.server_close()


def dynamic_client(address: str, tmp_path: Path) -> DynamicClient:
    config = client.Configuration()
    config.host = address
    return DynamicClient(client.ApiClient(config), cache_file=str(tmp_path / "discovery.json"))


def config_maps(n: int) -> list[Document]:
    return [Document("cms.yaml", 1 + 5 * i, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i}", "namespace": "default"}, "data": {"i": str(i)}})
        for i in range(n)]


@pytest.mark.parametrize(("how", "reason"), [
    ("refuse", "connection refused"),
    ("drop", "remote end closed connection without response"),
])
def test_losing_the_api_server_mid_apply_says_how_far_it_got(tmp_path, how, reason):
    fake = FakeApiServer(applies_before_loss=3, how=how)
    serving = fake.serve()
    address = next(serving)
    try:
        dyn = dynamic_client(address, tmp_path)
        docs = config_maps(5)
        with pytest.raises(ApplyInterrupted) as err:
            manifests.apply(docs, dyn)
    finally:
        serving.close()
    message = str(err.value)
    assert fake.applied == ["cm-0", "cm-1", "cm-2"]
    assert (err.value.applied, err.value.total) == (3, 5)
    assert f"lost the API server {address} while applying ConfigMap/cm-3 in namespace " \
           "default (cms.yaml:16)" in message
    assert reason in message.lower()
    assert "3 of 5 object(s) applied" in message
    assert "server-side apply is idempotent: re-run the same command" in message
    assert "\n" not in message


def test_an_api_server_gone_before_anything_is_applied_says_nothing_was(tmp_path):
    fake = FakeApiServer(applies_before_loss=99, how="refuse")
    serving = fake.serve()
    address = next(serving)
    try:
        dyn = dynamic_client(address, tmp_path)
    finally:
        serving.close()  # discovery was answered; now nothing listens
    with pytest.raises(ApplyInterrupted) as err:
        manifests.apply(config_maps(2), dyn)
    assert err.value.applied == 0
    assert "nothing applied (0 of 2 object(s))" in str(err.value)
    assert "connection refused" in str(err.value)


def test_the_harness_dynamic_client_keeps_discovery_in_memory(tmp_path, monkeypatch):
    """The library's default cache file is /tmp/osrcp-<host:port>.json: one left per
    environment, read back by a later environment on the same port."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fake = FakeApiServer(applies_before_loss=99, how="refuse")
    serving = fake.serve()
    address = next(serving)
    try:
        config = client.Configuration()
        config.host = address
        dyn = harness_dynamic_client(client.ApiClient(config))
        assert dyn.resources.get(api_version="v1", kind="ConfigMap").name == "configmaps"
        assert list(tmp_path.iterdir()) == []
        DynamicClient(client.ApiClient(config))  # what it replaces: a file in the temp dir
        assert [p.name[:6] for p in tmp_path.iterdir()] == ["osrcp-"]
    finally:
        serving.close()


@pytest.mark.slow
def test_losing_a_real_kube_apiserver_mid_apply(tmp_path):
    """The same against a real kube-apiserver (etcd + control plane of the toolchain),
    killed right after the third object was applied."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.errors import HarnessError
    from harness.settings import Settings

    settings = Settings().with_(state_dir=tmp_path / "state")
    try:
        toolchain = LocalEnvironment(settings).toolchain
        toolchain.binary("kubernetes", "kube-apiserver")
        toolchain.binary("etcd", "etcd")
    except HarnessError as exc:
        pytest.skip(f"toolchain not built: {exc}")
    platform = LocalEnvironment(settings).up(["kube"])
    try:
        dyn = harness_dynamic_client(platform.kube_client().api_client)
        apiserver = platform.process("kube-apiserver")
        applied: list[str] = []

        def log(message: str) -> None:
            applied.append(message)
            if len(applied) == 3:
                apiserver.kill()

        with pytest.raises(ApplyInterrupted) as err:
            manifests.apply(config_maps(6), dyn, log)
    finally:
        platform.down(purge=True)
    message = str(err.value)
    assert (err.value.applied, err.value.total) == (3, 6)
    assert "while applying ConfigMap/cm-3 in namespace default (cms.yaml:16)" in message
    # a new connection is refused; the pooled one may be found dead first
    assert any(r in message.lower() for r in ("connection refused", "connection reset",
                                               "closed connection without response"))
    assert "3 of 6 object(s) applied" in message and "re-run the same command" in message
