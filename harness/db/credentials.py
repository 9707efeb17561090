"""The database's credentials: generated once into Vault, delivered by ESO into the
`database` namespace, read from the Kubernetes Secrets ESO writes — never from Vault
directly, so a restore that does not bring them back through ESO is caught."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runtime.redact import REDACTOR
from harness.wait import eventually

NAMESPACE = "database"
DB_SECRET = "postgres-credentials"
BACKUP_SECRET = "backup-credentials"
BACKUP_VAULT_PATH = "backup/s3"  # secret/backup/s3: access_key, secret_key
DB_VAULT_PATH = "postgres/main"  # the spec's runbook seeds it
STORE = "vault-database-backend"


@dataclass(frozen=True)
class BackupKeys:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class DbLogin:
    username: str
    password: str


def new_backup_keys() -> BackupKeys:
    """S3-shaped keys: a 20-character access key, a 40-character secret."""
    upper = string.ascii_uppercase + string.digits
    return BackupKeys("".join(secrets.choice(upper) for _ in range(20)),
                      secrets.token_urlsafe(30)[:40])


def ensure_vault_values(vault: Any) -> None:
    """The backup keys in Vault, generated the first time (the runbook seeds the
    database login)."""
    if vault.kv_get(BACKUP_VAULT_PATH) is None:
        keys = new_backup_keys()
        vault.kv_put(BACKUP_VAULT_PATH, access_key=keys.access_key,
                     secret_key=keys.secret_key)


def manifest(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "database" / "external-secrets.yaml"
    if not path.exists():
        raise HarnessError(f"{path}: the database's ExternalSecrets are missing")
    return path


def store_object(vault: Any) -> dict[str, Any]:
    """The spec's store, as it must be written for a TLS Vault: https:// and the CA."""
    import base64

    ca = vault.ca_bundle()
    server = "https" if vault.tls else "http"
    spec: dict[str, Any] = {
        "server": f"{server}://vault.vault.svc.cluster.local:8200", "path": "secret",
        "version": "v2", "auth": {"kubernetes": {
            "mountPath": "kubernetes", "role": "external-secrets",
            "serviceAccountRef": {"name": "external-secrets",
                                  "namespace": "external-secrets"}}}}
    if ca:
        spec["caBundle"] = base64.b64encode(ca).decode()
    return {"apiVersion": "external-secrets.io/v1beta1", "kind": "ClusterSecretStore",
            "metadata": {"name": STORE}, "spec": {"provider": {"vault": spec}}}


def read_secret(core: Any, name: str) -> dict[str, str] | None:
    """The Secret's data (decoded; every value but the user name registered with the
    redactor), None if absent."""
    import base64

    from kubernetes import client

    try:
        secret = core.read_namespaced_secret(name, NAMESPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    REDACTOR.add(*(v for k, v in data.items() if k != "username" and len(v) >= 6))
    return data


def wait_secret(core: Any, name: str, keys: tuple[str, ...], timeout: float = 60) -> dict:
    def delivered() -> dict[str, str]:
        data = read_secret(core, name)
        if data is None:
            raise AssertionError(f"Secret {NAMESPACE}/{name} does not exist yet")
        missing = [k for k in keys if not data.get(k)]
        if missing:
            raise AssertionError(f"Secret {NAMESPACE}/{name} lacks {', '.join(missing)}")
        return data

    return eventually(delivered, timeout=timeout, interval=0.2, error=HarnessError,
                      description=f"ESO delivers Secret {NAMESPACE}/{name} "
                                  "(is the ClusterSecretStore vault-cluster-backend Ready?)")


def backup_keys(core: Any, timeout: float = 60) -> BackupKeys:
    data = wait_secret(core, BACKUP_SECRET, ("access_key", "secret_key"), timeout)
    return BackupKeys(data["access_key"], data["secret_key"])


def db_login(core: Any, timeout: float = 60) -> DbLogin:
    data = wait_secret(core, DB_SECRET, ("username", "password"), timeout)
    return DbLogin(data["username"], data["password"])
