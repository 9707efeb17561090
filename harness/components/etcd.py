"""etcd 3.6 (built from go.etcd.io/etcd/server/v3): the control plane's storage.

One member on 127.0.0.1. `--unsafe-no-fsync` as envtest runs it: the data lives as long
as the environment, and fsync on a shared CI disk costs seconds of apiserver latency.
The data directory survives restart; cluster-state restore drills use etcdctl/etcdutl.
"""

from __future__ import annotations

from harness.components.base import Component
from harness.runtime.probes import http_ok


class Etcd(Component):
    name = "etcd"
    port_names = ("etcd.client", "etcd.peer")
    toolchain = ("etcd",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('etcd.client')}"

    def process_specs(self):
        client, peer = self.ctx.port("etcd.client"), self.ctx.port("etcd.peer")
        data = self.ctx.state.data("etcd")
        argv = [
            self.bin("etcd", "etcd"),
            "--name=default",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]
        return [self.spec("etcd", argv, http_ok(f"{self.address}/health", expect=b'"true"'),
                          data_dir=data)]
