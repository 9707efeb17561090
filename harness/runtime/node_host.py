"""What a real node changes on the host outside its own namespaces, made reversible:

- **cgroups**: one tree per run, `heracles-<run id>`, in every cgroup v1 hierarchy (and
  the v2 one mounted beside them). The kubelet's `cgroupRoot` and containerd's own
  cgroup live in it, so every container and every shim (which leave their parent's
  session) is found there, killed, and the tree removed;
- **sysctls**: the kubelet sets global kernel settings (`vm.overcommit_memory`,
  `kernel.panic`, ...). The originals are recorded machine-wide before the first node
  starts and restored when the last one stops, whether it stopped or was reaped.

Both are keyed by run id. The claim (which names the run's registry) is made before the
cgroups exist and dropped after they are gone, so a registry's reaper undoes exactly its
own killed runs' nodes — never those of another registry's live run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

CGROUP_ROOT = Path("/sys/fs/cgroup")
# What kubelet 1.34 sets when protectKernelDefaults is false (pkg/kubelet/cm
# setupKernelTunables): recorded before and restored after.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                   "kernel/panic_on_oops", "kernel/keys/root_maxkeys",
                   "kernel/keys/root_maxbytes")


def cgroup_name(run_id: str) -> str:
    return f"heracles-{run_id}"


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy under /sys/fs/cgroup (v1 controllers, the named
    systemd one, the v2 `unified` one); symlinks such as cpu -> cpu,cpuacct skipped."""
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(p for p in CGROUP_ROOT.iterdir()
                  if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists())


def cgroup_dirs(run_id: str) -> list[Path]:
    return [h / cgroup_name(run_id) for h in hierarchies()
            if (h / cgroup_name(run_id)).is_dir()]


def create_cgroups(run_id: str, children: tuple[str, ...] = ("system",)) -> None:
    """The run's tree and its children in every hierarchy; cpuset ones get the parent's
    cpus and mems (an empty cpuset refuses every process)."""
    for h in hierarchies():
        for rel in ("", *children):
            path = h / cgroup_name(run_id) / rel
            path.mkdir(parents=True, exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):
                mine = path / knob
                if mine.exists() and not mine.read_text().strip():
                    mine.write_text((path.parent / knob).read_text())


def cgroup_pids(run_id: str) -> set[int]:
    pids: set[int] = set()
    for top in cgroup_dirs(run_id):
        for procs in top.rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except (OSError, ValueError):
                continue
    return pids


def kill_cgroup(run_id: str, timeout: float = 10.0) -> int:
    """SIGKILL everything in the run's cgroups (a frozen cgroup is thawed first), until
    they are empty or `timeout`; returns how many processes were killed."""
    for top in cgroup_dirs(run_id):
        if top.parent.name == "freezer":
            for state in top.rglob("freezer.state"):
                try:
                    state.write_text("THAWED")
                except OSError:
                    pass
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (pids := cgroup_pids(run_id)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return len(killed)


def remove_cgroups(run_id: str, timeout: float = 10.0) -> list[str]:
    """rmdir the run's trees, deepest first; returns what could not be removed."""
    left: list[str] = []
    for top in cgroup_dirs(run_id):
        dirs = sorted((p for p in [top, *top.rglob("*")] if p.is_dir()),
                      key=lambda p: len(p.parts), reverse=True)
        for d in dirs:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        left.append(str(d))
                        break
                    time.sleep(0.05)  # a dying process leaves its cgroup a moment later
    return left


def leftover_cgroups() -> dict[str, list[Path]]:
    """run id -> its cgroup dirs, for every `heracles-*` tree on the machine."""
    found: dict[str, list[Path]] = {}
    for h in hierarchies():
        for d in h.glob("heracles-*"):
            found.setdefault(d.name.removeprefix("heracles-"), []).append(d)
    return found


# ---- sysctls ---------------------------------------------------------------------------
# Machine-wide, like the settings themselves: whichever registry a node belongs to, the
# first node of the machine records the originals and the last one restores them. Under
# /run, so a reboot (which resets the sysctls too) forgets it.
CLAIMS = Path("/run/heracles-harness/node-sysctls.json")


def read_sysctls() -> dict[str, str]:
    out = {}
    for key in KUBELET_SYSCTLS:
        path = Path("/proc/sys") / key
        if path.exists():
            out[key] = path.read_text().strip()
    return out


def _claims() -> dict[str, Any]:
    try:
        data = json.loads(CLAIMS.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def acquire_sysctls(registry: Path, run_id: str) -> None:
    """Claim the kubelet's sysctls for this run (of this registry), recording the host's
    values first when no node of the machine holds them yet."""
    CLAIMS.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CLAIMS) + ".lock"):
        data = _claims()
        if not data.get("runs"):
            data = {"original": read_sysctls(), "runs": {}}
        data["runs"][run_id] = str(registry)
        CLAIMS.write_text(json.dumps(data, indent=2))


def release_sysctls(run_id: str) -> dict[str, str]:
    """Drop this run's claim; when no node is left, write the originals back. Returns
    what was restored (empty while another node still runs)."""
    if not CLAIMS.exists():
        return {}
    with FileLock(str(CLAIMS) + ".lock"):
        data = _claims()
        runs = {r: reg for r, reg in data.get("runs", {}).items() if r != run_id}
        if runs:
            data["runs"] = runs
            CLAIMS.write_text(json.dumps(data, indent=2))
            return {}
        restored = {}
        for key, value in data.get("original", {}).items():
            target = Path("/proc/sys") / key
            try:
                if target.read_text().strip() != value:
                    target.write_text(value)
                    restored[key] = value
            except OSError:
                continue
        CLAIMS.unlink(missing_ok=True)
    Path(str(CLAIMS) + ".lock").unlink(missing_ok=True)
    try:
        CLAIMS.parent.rmdir()
    except OSError:
        pass  # another file there, or gone already
    return restored


def sysctl_runs(registry: Path | None = None) -> list[str]:
    """Runs holding a node claim: of one registry (what its reaper may judge), or all."""
    runs = _claims().get("runs", {})
    return sorted(r for r, reg in runs.items() if registry is None or reg == str(registry))


def run_tmp_dir(run_id: str) -> Path:
    """A node run's scratch directory on the host (short: sockets live in it), removed
    with the run's other host changes."""
    return Path("/tmp") / cgroup_name(run_id)


def release_host(run_id: str) -> dict[str, object]:
    """Undo everything a node run changed on the host: its processes in cgroups, the
    cgroups, its scratch directory, its claim on the sysctls (kept while a cgroup could
    not be removed, so the next reaper tries again). Idempotent; cheap when the run had
    no node."""
    import shutil

    killed = kill_cgroup(run_id) if cgroup_dirs(run_id) else 0
    left = remove_cgroups(run_id)
    shutil.rmtree(run_tmp_dir(run_id), ignore_errors=True)
    restored = release_sysctls(run_id) if not left else {}
    return {"killed": killed, "cgroups_left": left, "sysctls_restored": restored}


# ---- what the host looks like ----------------------------------------------------------

# Paths a kubelet, containerd or CNI would create on a host by default: the node keeps
# them inside its own namespaces, so none may appear here.
HOST_DEFAULT_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/var/log/pods",
                      "/var/lib/cni", "/etc/cni", "/opt/cni", "/etc/kubernetes",
                      "/var/lib/containerd/io.containerd.grpc.v1.cri", "/run/netns")


def host_footprint() -> dict[str, list[str]]:
    """What a node could change on the host, as comparable lists: mounts, cgroup trees,
    the kubelet's sysctls, network links and addresses, iptables rules, default paths."""
    import subprocess

    def lines(argv: list[str]) -> list[str]:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return [f"{argv[0]}: unavailable"]
        return proc.stdout.splitlines()

    mounts = sorted({" ".join(line.split()[4:5] + line.split(" - ")[-1].split()[:1])
                     for line in Path("/proc/self/mountinfo").read_text().splitlines()})
    rules = [r for r in lines(["iptables-save"]) if r and not r.startswith(("#", ":"))]
    return {
        "mounts": mounts,
        "cgroups": sorted(str(d) for ds in leftover_cgroups().values() for d in ds),
        "sysctls": [f"{k}={v}" for k, v in sorted(read_sysctls().items())],
        "links": sorted(line.split(":")[1].strip() for line in lines(["ip", "-o", "link"])
                        if ":" in line),
        "addresses": sorted(" ".join(line.split()[1:4]) for line in
                            lines(["ip", "-o", "addr"])),
        "iptables": sorted(rules),
        "paths": [p for p in HOST_DEFAULT_PATHS if Path(p).exists()],
    }


def footprint_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """What changed, one line per item added or removed."""
    out = []
    for key in sorted(set(before) | set(after)):
        b, a = set(before.get(key, [])), set(after.get(key, []))
        out += [f"{key}: + {item}" for item in sorted(a - b)]
        out += [f"{key}: - {item}" for item in sorted(b - a)]
    return out
