"""Run a process in private Linux namespaces (`unshare --map-root-user`: no privileges
needed) after a setup script — for upstream binaries whose assumptions about a Pod
(a namespace file, a listener on 0.0.0.0) must not touch the machine."""

from __future__ import annotations

import shutil

from harness.errors import HarnessError


def in_private_namespaces(kinds: list[str], setup: str, argv: list[str],
                          why: str) -> list[str]:
    """argv that runs `setup` (sh) inside new namespaces of `kinds` ("mount", "net"),
    then execs `argv` there (same pid: the process stays tracked)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise HarnessError(f"{why} needs `unshare` (util-linux)")
    return [unshare, *(f"--{k}" for k in kinds), "--map-root-user", "sh", "-c",
            f'{setup} && exec "$@"', argv[0], *argv]
