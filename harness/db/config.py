"""Files rendered from the credentials ESO delivers. The components write them at start;
the backup agent rewrites them when a rotation lands (a Secret changed)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.db.credentials import BackupKeys
from harness.runtime.pki import write_private

BUCKET = "heracles-backups"
STANZA = "main"
REGION = "us-east-1"  # the S3 signing region; SeaweedFS accepts any
ACTIONS = ["Admin", "Read", "List", "Tagging", "Write"]


def write_identities(path: Path, keys: BackupKeys) -> None:
    """SeaweedFS's S3 identities (`-s3.config`): one user, the backup keys. SIGHUP makes
    a running store read it again."""
    doc = {"identities": [{"name": "backup", "actions": ACTIONS, "credentials": [
        {"accessKey": keys.access_key, "secretKey": keys.secret_key}]}]}
    write_private(path, json.dumps(doc, indent=2).encode())


@dataclass(frozen=True)
class RepoConfig:
    """Where pgBackRest keeps its repository and how it reaches the database."""

    s3_port: int  # region A's S3 port (HTTPS, certificate for `localhost`)
    ca_file: Path
    pg_data: Path
    pg_port: int
    pg_socket: Path
    work_dir: Path  # log, lock and spool paths
    archive_timeout: float

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepoConfig:
        return cls(s3_port=int(data["s3_port"]), ca_file=Path(data["ca_file"]),
                   pg_data=Path(data["pg_data"]), pg_port=int(data["pg_port"]),
                   pg_socket=Path(data["pg_socket"]), work_dir=Path(data["work_dir"]),
                   archive_timeout=float(data["archive_timeout"]))

    def render(self, keys: BackupKeys) -> str:
        # pgBackRest 2.45 checks the endpoint against DNS names only (an IP SAN does
        # not match `127.0.0.1`): the endpoint is `localhost`, the certificate has it.
        return "\n".join([
            "[global]",
            "repo1-type=s3",
            "repo1-s3-endpoint=localhost",
            f"repo1-storage-port={self.s3_port}",
            "repo1-s3-uri-style=path",
            f"repo1-s3-bucket={BUCKET}",
            f"repo1-s3-region={REGION}",
            f"repo1-s3-key={keys.access_key}",
            f"repo1-s3-key-secret={keys.secret_key}",
            f"repo1-storage-ca-file={self.ca_file}",
            "repo1-path=/pgbackrest",
            "repo1-retention-full=2",
            "start-fast=y",
            "compress-type=lz4",
            f"archive-timeout={self.archive_timeout:g}",
            # An unreachable store fails an archive-push after about 4 x io-timeout; at
            # the default 60 s it hung for minutes while PostgreSQL waited, and nothing
            # counted a failure (found here with region A's store killed).
            "io-timeout=5",
            f"log-path={self.work_dir / 'log'}",
            f"lock-path={self.work_dir / 'lock'}",
            f"spool-path={self.work_dir / 'spool'}",
            "log-level-console=warn",
            "log-level-file=info",
            "",
            f"[{STANZA}]",
            f"pg1-path={self.pg_data}",
            f"pg1-port={self.pg_port}",
            f"pg1-socket-path={self.pg_socket}",
            "",
        ])

    def write(self, path: Path, keys: BackupKeys) -> None:
        for sub in ("log", "lock", "spool"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        write_private(path, self.render(keys).encode())
