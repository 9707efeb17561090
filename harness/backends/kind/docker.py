"""A private Docker daemon for the kind backend, when no Docker answers already (a laptop
has one; this machine does not). It runs with nothing to reach and nothing to change:

- a network namespace of its own holding only loopback (a pull fails with "network is
  unreachable" without a packet leaving the machine); kind's user-defined `kind` bridge
  network lives in it too. `--bridge=none --iptables=false --ip-masq=false`: no docker0,
  no firewall rule. Its published ports are 127.0.0.1 *in that namespace*: the backend
  carries the ones it needs to the host's 127.0.0.1 (`harness.daemons.nsbridge`);
- a mount namespace of its own (private propagation): every overlay it mounts vanishes
  with it, however it ends;
- runc behind the capability wrapper (`harness/runtime/runc_wrapper.py`) as the default
  runtime: Docker 20.10 asks for every capability for `--privileged`, including
  CAP_SYS_RESOURCE, which this machine's bounding set lacks;
- the run's cgroups: the daemon in `/heracles-<run>/system`, every container under
  `--cgroup-parent=/heracles-<run>/docker`, and the run's claim on the kernel settings a
  kind node's kubelet changes — so `release_host` (at `stop`, or the next run's reaper
  after a crash) kills every process a kind cluster had and restores the sysctls.

A ManagedProcess marked with the run id, on a unix socket in the run's scratch directory
`/tmp/heracles-<run>` (containerd's socket under the exec root must fit in 108 bytes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.runtime import node_host
from harness.runtime.process import ManagedProcess, ProcessSpec

WRAPPER_RUNTIME = "heracles-runc"


class PrivateDockerd:
    def __init__(self, dockerd: str, docker: str, run_id: str, registry: str,
                 log_dir: Path, data_root: Path | None = None) -> None:
        if os.geteuid() != 0:
            raise HarnessError("dockerd needs root (it mounts and manages containers)")
        self.run_id = run_id
        self.registry = registry
        # reaped with the run's cgroups (release_host), however the run ends
        self.root = node_host.run_tmp_dir(run_id)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_root = data_root or self.root / "data"
        self.docker = docker
        self.host = f"unix://{self.root}/docker.sock"
        from harness.runtime import runc_wrapper

        wrapper = self.root / "runc"
        wrapper.write_text(runc_wrapper.script(sys.executable))
        wrapper.chmod(0o755)
        cgroup = node_host.cgroup_name(run_id)
        script = (
            f'for p in /sys/fs/cgroup/*/{cgroup}/system/cgroup.procs; do '
            '[ -e "$p" ] && echo $$ > "$p" 2>/dev/null || true; done; '
            'exec unshare --net --mount --propagation private sh -c '
            '\'ip link set lo up && exec "$0" "$@"\' "$@"')
        argv = ["sh", "-c", script, "dockerd", dockerd, "--host", self.host,
                "--data-root", str(self.data_root), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "pid"), "--bridge=none", "--iptables=false",
                "--ip-masq=false", "--add-runtime", f"{WRAPPER_RUNTIME}={wrapper}",
                "--default-runtime", WRAPPER_RUNTIME,
                "--cgroup-parent", f"/{cgroup}/docker"]
        spec = ProcessSpec("dockerd", argv, log_dir / "dockerd.log", self.ready,
                           start_timeout=60, stop_grace=20)
        self.proc = ManagedProcess(spec, run_id, registry)

    def ready(self) -> bool:
        return subprocess.run([self.docker, "-H", self.host, "info"], capture_output=True,
                              timeout=10).returncode == 0

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    @property
    def netns(self) -> str:
        """The daemon's network namespace (where kind's network and ports are)."""
        pid = self.proc.pid
        if pid is None:
            raise HarnessError("the private Docker daemon is not running")
        return f"/proc/{pid}/ns/net"

    def start(self) -> PrivateDockerd:
        node_host.acquire_sysctls(Path(self.registry), self.run_id)
        node_host.create_cgroups(self.run_id, children=("system", "docker"))
        try:
            self.proc.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, object]:
        """The daemon, then whatever of its containers is left (their cgroups), the
        claim, the temp dir. Idempotent."""
        self.proc.stop()
        undone = node_host.release_host(self.run_id)
        shutil.rmtree(self.root, ignore_errors=True)
        return undone

    def __enter__(self) -> PrivateDockerd:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
