"""The backup tool, behind one small interface: what the drills and the backup agent
need of it. pgBackRest plays it here (Debian's 2.45). WAL-G — the spec's tool — would be
a second implementation of `BackupTool` (`wal-g backup-push`, `wal-push` as the
archive_command, `backup-fetch` plus a restore_command); its Go module is refused by the
module proxy on these machines (403), so it is not built and not claimed."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.db.config import STANZA
from harness.db.postgres import as_db_user
from harness.errors import HarnessError
from harness.runtime.redact import redact


@dataclass(frozen=True)
class BaseBackup:
    label: str
    kind: str  # full, diff, incr
    started: float  # unix time
    stopped: float
    size: int  # bytes of the database
    repo_size: int  # bytes in the repository (compressed)
    wal_start: str
    wal_stop: str


@dataclass(frozen=True)
class Target:
    """Where recovery stops: "default" (end of the archive), "xid", "time", "lsn"."""

    kind: str = "default"
    value: str = ""
    exclusive: bool = False


class BackupTool(Protocol):
    name: str

    def archive_command(self) -> str: ...
    def stanza_create(self) -> None: ...
    def check(self) -> None: ...
    def backup(self, kind: str = "full") -> BaseBackup: ...
    def backups(self) -> list[BaseBackup]: ...
    def restore(self, target: Target, s3_port: int | None = None) -> float: ...


class PgBackRest:
    """pgBackRest with the environment's config file; `s3_port` on restore points the
    repository at another region's store (same bucket, same keys)."""

    name = "pgbackrest"

    def __init__(self, binary: str, config: Path, stanza: str = STANZA) -> None:
        self.binary = binary
        self.config = config
        self.stanza = stanza

    def _argv(self, command: str, *options: str) -> list[str]:
        return as_db_user([self.binary, f"--config={self.config}",
                           f"--stanza={self.stanza}", *options, command])

    def run(self, command: str, *options: str, timeout: float = 600) -> str:
        argv = self._argv(command, *options)
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                 check=False)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"pgbackrest {command} did not finish within "
                               f"{timeout:.0f}s") from None
        if out.returncode != 0:
            raise HarnessError(f"pgbackrest {command} failed (exit {out.returncode}): "
                               f"{redact((out.stderr or out.stdout).strip()[-800:])}")
        return out.stdout

    def archive_command(self) -> str:
        return f"{self.binary} --config={self.config} --stanza={self.stanza} archive-push %p"

    def stanza_create(self) -> None:
        self.run("stanza-create")

    def check(self) -> None:
        self.run("check")

    def backup(self, kind: str = "full") -> BaseBackup:
        self.run("backup", f"--type={kind}")
        return self.backups()[-1]

    def info(self, s3_port: int | None = None) -> list[dict]:
        opts = [f"--repo1-storage-port={s3_port}"] if s3_port else []
        data = json.loads(self.run("info", "--output=json", *opts) or "[]")
        return [s for s in data if s.get("name") == self.stanza]

    def backups(self, s3_port: int | None = None) -> list[BaseBackup]:
        stanzas = self.info(s3_port)
        found = stanzas[0].get("backup", []) if stanzas else []
        return [BaseBackup(
            label=b["label"], kind=b["type"], started=float(b["timestamp"]["start"]),
            stopped=float(b["timestamp"]["stop"]), size=int(b["info"]["size"]),
            repo_size=int(b["info"]["repository"]["delta"]),
            wal_start=b["archive"]["start"], wal_stop=b["archive"]["stop"])
            for b in found]

    def archived_wal(self, s3_port: int | None = None) -> str | None:
        """The newest WAL segment in the repository (None: none)."""
        stanzas = self.info(s3_port)
        archives = stanzas[0].get("archive", []) if stanzas else []
        newest = [a["max"] for a in archives if a.get("max")]
        return max(newest) if newest else None

    def restore(self, target: Target, s3_port: int | None = None) -> float:
        """Restore into the (stopped) server's data directory; seconds it took. The
        server then replays WAL up to the target and promotes."""
        # --delta reuses what is still right in the data directory; --force lets it run
        # where no valid cluster is left (a wiped or fresh server).
        opts = ["--delta", "--force"]
        if target.kind != "default":
            opts += [f"--type={target.kind}", f"--target={target.value}",
                     "--target-action=promote"]
            if target.exclusive:
                opts.append("--target-exclusive")
        if s3_port:
            opts.append(f"--repo1-storage-port={s3_port}")
        t0 = time.monotonic()
        self.run("restore", *opts)
        return time.monotonic() - t0
