"""Debian packages the local backend runs (Prometheus, Alertmanager, Redis, git).

Installed with apt-get when we are root. Package maintainer scripts would otherwise start
these as system services listening on every interface (Prometheus on *:9090), so the
install runs under a `policy-rc.d` that forbids service starts: the harness starts its
own instances on 127.0.0.1, under its own supervision.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain.lock import ComponentSpec

POLICY_RC = Path("/usr/sbin/policy-rc.d")


def installed_version(package: str) -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                          capture_output=True, text=True)
    if proc.returncode != 0 or "install ok installed" not in proc.stdout:
        return None
    return proc.stdout.split("\t", 1)[1]


def upstream(version: str) -> str:
    """'1:2.39.5-0+deb12u3' -> '2.39.5'; '2.42.0+ds-5+b5' -> '2.42.0'."""
    v = version.split(":", 1)[-1]
    return re.split(r"[-+~]", v, maxsplit=1)[0]


def apt_command(packages: list[str]) -> str:
    return "apt-get update && apt-get install -y --no-install-recommends " + " ".join(packages)


def install_packages(specs: list[ComponentSpec], log_path: Path,
                     on_step: Callable[[str], None]) -> list[str]:
    """Install the missing packages of `specs` in one apt transaction; returns them."""
    missing = [p for s in specs for p in s.packages if installed_version(p) is None]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ToolchainError(
            ",".join(s.name for s in specs),
            f"Debian packages missing: {' '.join(missing)}; as root run: sudo sh -c "
            f"'{apt_command(missing)}'",
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    created_policy = False
    if not POLICY_RC.exists():
        POLICY_RC.write_text(
            "#!/bin/sh\n# heracles-harness: no service starts during install\nexit 101\n")
        POLICY_RC.chmod(0o755)
        created_policy = True
    try:
        with log_path.open("a") as log:
            for step, cmd in (
                ("apt-get update", ["apt-get", "update"]),
                (f"apt-get install {' '.join(missing)}",
                 ["apt-get", "install", "-y", "--no-install-recommends", *missing]),
            ):
                on_step(step)
                proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
                log.write(f"$ {' '.join(cmd)}\n{proc.stdout}")
                if proc.returncode != 0:
                    tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
                    raise ToolchainError(",".join(s.name for s in specs),
                                         f"`{' '.join(cmd)}` failed (log: {log_path})", tail)
    finally:
        if created_policy:
            POLICY_RC.unlink(missing_ok=True)
    return missing


def debian_state(spec: ComponentSpec) -> tuple[str, str]:
    """('ok'|'missing'|'corrupt', detail) for an installed-package component."""
    versions = []
    for pkg in spec.packages:
        v = installed_version(pkg)
        if v is None:
            return "missing", f"package {pkg} not installed"
        versions.append(v)
    for name, path in spec.binaries.items():
        if not os.access(path, os.X_OK):
            return "corrupt", f"{name}: {path} missing or not executable"
    have = upstream(versions[0])
    if not have.startswith(spec.version):
        return "ok", f"installed {have}, lock expects {spec.version}.x"
    return "ok", f"installed {versions[0]}"
