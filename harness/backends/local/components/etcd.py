"""etcd 3.6 (built from go.etcd.io/etcd/server/v3): the control plane's storage.

One member on 127.0.0.1. `--unsafe-no-fsync` as envtest runs it: the data lives as long
as the environment, and fsync on a shared CI disk costs seconds of apiserver latency.
The data directory survives restart; cluster-state restore drills use etcdctl/etcdutl.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness.backends.local.components.base import Component
from harness.errors import HarnessError
from harness.runtime.probes import http_ok
from harness.runtime.process import ProcessSpec


class Etcd(Component):
    name = "etcd"
    port_names = ("etcd.client", "etcd.peer")
    toolchain = ("etcd",)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.ctx.port('etcd.client')}"

    def process_specs(self) -> list[ProcessSpec]:
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

    # ---- backup / restore (cluster-state drills) ---------------------------------------
    def _run(self, tool: str, *args: str) -> str:
        result = subprocess.run([self.bin("etcd", tool), *args], capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            raise HarnessError(f"`{tool} {' '.join(args[:2])}` failed ({result.returncode}):"
                               f" {result.stderr.strip()[-500:]}")
        return result.stdout

    def etcdctl(self, *args: str) -> str:
        """`etcdctl` against this member."""
        return self._run("etcdctl", f"--endpoints={self.address}", *args)

    def snapshot_save(self, path: Path) -> Path:
        """`etcdctl snapshot save`: a consistent copy of the whole cluster state (0600:
        Secrets are in it, base64 only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.etcdctl("snapshot", "save", str(path))
        path.chmod(0o600)
        return path

    def check_snapshot(self, snapshot: Path) -> None:
        """`etcdutl snapshot status`: refuses a missing or corrupt file before anything
        is stopped."""
        self._run("etcdutl", "snapshot", "status", str(snapshot))

    def restore_data(self, snapshot: Path) -> None:
        """`etcdutl snapshot restore` into this member's (stopped) data directory, with
        the member's own name and peer URL, replacing what was there."""
        proc = self.process("etcd")
        if proc.running():
            raise HarnessError("stop etcd before restoring its data directory")
        data = proc.spec.data_dir
        assert data is not None
        if not snapshot.is_file():
            raise HarnessError(f"etcd snapshot {snapshot} does not exist")
        shutil.rmtree(data, ignore_errors=True)
        peer = f"http://127.0.0.1:{self.ctx.port('etcd.peer')}"
        self._run("etcdutl", "snapshot", "restore", str(snapshot), f"--data-dir={data}",
                  "--name=default", f"--initial-cluster=default={peer}",
                  f"--initial-advertise-peer-urls={peer}")
