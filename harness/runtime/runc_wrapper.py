"""runc, minus the capabilities this machine cannot grant.

Installed as containerd's runc `BinaryName` (the real node), dockerd's default runtime
(the kind backend's private daemon) and `/usr/local/sbin/runc` (the kind node image).
The kernel's capability bounding set here lacks CAP_SYS_RESOURCE, and runc refuses a
container that asks for a capability outside it ("unable to apply caps"). Before handing
over to the real runc, this drops such capabilities from the bundle's `config.json`
(create/run) or the `--process` file (exec), and nothing else. Standalone: only the
standard library, run once per runc call.
"""

import json
import os
import sys

RUNC = "/usr/sbin/runc"
CAPS = ("CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE").split()


def script(interpreter: str) -> str:
    """This file as an executable run by `interpreter` (the harness's Python for the
    real node and the private dockerd, the node image's own for a kind node)."""
    with open(__file__) as fh:
        return f"#!{interpreter} -S\n" + fh.read()


def missing_caps() -> set[str]:
    with open("/proc/self/status") as fh:
        bounding = next(int(line.split()[1], 16) for line in fh if line.startswith("CapBnd:"))
    return {f"CAP_{name}" for bit, name in enumerate(CAPS) if not (bounding >> bit) & 1}


def strip(path: str, process_file: bool, missing: set[str]) -> None:
    try:
        with open(path) as fh:
            spec = json.load(fh)
    except (OSError, ValueError):
        return  # runc reports the problem itself
    caps = spec.get("capabilities") if process_file else (spec.get("process") or {}).get(
        "capabilities")
    if not caps:
        return
    changed = False
    for kind, names in caps.items():
        kept = [c for c in names or [] if c not in missing]
        if kept != names:
            caps[kind], changed = kept, True
    if changed:
        with open(path, "w") as fh:
            json.dump(spec, fh)


def main(args: list[str]) -> None:
    missing = missing_caps()
    if missing:
        for i, arg in enumerate(args):
            value = args[i + 1] if i + 1 < len(args) else ""
            if arg in ("--bundle", "-b"):
                strip(os.path.join(value, "config.json"), False, missing)
            elif arg.startswith("--bundle="):
                strip(os.path.join(arg.split("=", 1)[1], "config.json"), False, missing)
            elif arg in ("--process", "-p"):
                strip(value, True, missing)
            elif arg.startswith("--process="):
                strip(arg.split("=", 1)[1], True, missing)
    os.execv(RUNC, ["runc", *args])


if __name__ == "__main__":
    main(sys.argv[1:])
