"""Running PostgreSQL here, and talking to it.

PostgreSQL refuses to run as root. When the harness runs as root (CI, containers) the
server, initdb and pgBackRest run in a user namespace that maps the `postgres` user (from
Debian's package) onto root: inside, the server is not root; outside, its files stay
root's, inside the environment's 0700 state directory, with nothing to chown.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

SUPERUSER = "postgres"
SOCKET_LIMIT = 100  # sun_path is 108 bytes; the socket's name adds ".s.PGSQL.NNNNN"


def as_db_user(argv: list[str]) -> list[str]:
    """`argv` as a non-root user: itself when not root, else in a user namespace mapped
    onto the `postgres` user."""
    if os.geteuid() != 0:
        return argv
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise HarnessError("PostgreSQL refuses to run as root and this machine has no "
                           "`postgres` user: install Debian's postgresql-15 "
                           "(`harness toolchain install --only postgresql`)") from None
    return ["unshare", "--user", f"--map-user={user.pw_uid}", f"--map-group={user.pw_gid}",
            *argv]


def socket_dir(state_root: Path) -> Path:
    """The server's Unix socket directory: in the state directory when the path fits
    in a socket address, else a short one in the temp dir named after it."""
    inside = state_root / "db" / "run"
    if len(str(inside)) + 16 <= SOCKET_LIMIT:
        return inside
    import hashlib
    import tempfile

    tag = hashlib.sha256(str(state_root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"heracles-pg-{tag}"


def connect(sock: Path, port: int, dbname: str = "postgres", **kwargs: Any) -> Any:
    """A superuser connection over the Unix socket (trust: the socket directory is the
    environment's own), autocommit."""
    import psycopg

    return psycopg.connect(host=str(sock), port=port, user=SUPERUSER, dbname=dbname,
                           autocommit=True, connect_timeout=5, **kwargs)


def connect_tcp(port: int, user: str, password: str, dbname: str = "postgres") -> Any:
    """A client's connection over TCP on 127.0.0.1 (scram-sha-256: the password ESO
    delivered)."""
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                           dbname=dbname, autocommit=True, connect_timeout=5)


def apply_login(conn: Any, user: str, password: str) -> None:
    """The role ESO's Secret names, created if missing, with the Secret's password
    (ALTER ROLE ... PASSWORD, the value sent as a literal: never logged by us, and the
    server logs no statements). At start and on every rotation the agent sees."""
    from psycopg import sql

    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(user)))
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(user), sql.Literal(password)))
