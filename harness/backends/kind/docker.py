"""A private Docker daemon for the kind backend's checks. kind reads and validates its
cluster config only after a Docker daemon answers; here the daemon runs with nothing to
reach: a private network namespace holding only loopback (an image pull fails with
"network is unreachable" without a packet leaving the machine), a unix socket in a temp
dir, no bridge, no iptables changes. It is a ManagedProcess marked with the run id, so a
crashed session's daemon is reaped like any other harness process."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.runtime.process import ManagedProcess, ProcessSpec


class PrivateDockerd:
    def __init__(self, dockerd: str, docker: str, run_id: str, registry: str,
                 log_dir: Path) -> None:
        if os.geteuid() != 0:
            raise HarnessError("dockerd needs root (it mounts and manages containers)")
        # Short path: containerd's socket under exec-root must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="hd-", dir="/tmp"))
        self.docker = docker
        self.host = f"unix://{self.root}/docker.sock"
        script = ("ip link set lo up && exec \"$0\" --host \"$1\" --data-root \"$2\" "
                  "--exec-root \"$3\" --pidfile \"$4\" --bridge=none --iptables=false "
                  "--ip-masq=false")
        argv = ["unshare", "--net", "sh", "-c", script, dockerd, self.host,
                str(self.root / "data"), str(self.root / "exec"), str(self.root / "pid")]
        spec = ProcessSpec("dockerd", argv, log_dir / "dockerd.log", self.ready,
                           start_timeout=60, stop_grace=10)
        self.proc = ManagedProcess(spec, run_id, registry)

    def ready(self) -> bool:
        return subprocess.run([self.docker, "-H", self.host, "info"], capture_output=True,
                              timeout=10).returncode == 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def __enter__(self) -> PrivateDockerd:
        self.proc.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.proc.stop()
        shutil.rmtree(self.root, ignore_errors=True)
