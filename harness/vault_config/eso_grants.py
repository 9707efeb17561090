"""ESO's read grants on new Vault paths (`harness eso grant PATH`): what a new secret
path needs before an ExternalSecret through `vault-cluster-backend` can sync it — the
first sync fails with 403 permission denied otherwise. The grants are recorded in the
state directory, and ESO's install step (a fresh `up` after `down`) writes its policy
with them, so they outlive the environment's restarts."""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import HarnessError

ESO_POLICY = "external-secrets"  # the ClusterSecretStore's role and policy (eso.py)
_PATH_RE = re.compile(r"[A-Za-z0-9_.+*/-]+")


def kv_policy_path(path: str, mount: str = "secret") -> str:
    """The KV v2 data path a Vault policy names for a secret the runbook writes as
    `vault kv put secret/<path>` (or an ExternalSecret's remoteRef key `<path>`):
    `secret/data/<path>`. `secret/...` and `secret/data/...` are accepted as given. Only
    path characters (and Vault's globs `*`, `+`): nothing that could break out of the
    policy's quoted string."""
    rest = path.strip().strip("/")
    for prefix in (f"{mount}/data/", f"{mount}/"):
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    if rest == mount or not _PATH_RE.fullmatch(rest) or ".." in rest.split("/"):
        raise HarnessError(f"{path!r} is not a Vault KV path (letters, digits, _ . - / and "
                           "the globs * +)")
    return f"{mount}/data/{rest}"


def with_read_grants(hcl: str, paths: list[str]) -> tuple[str, list[str]]:
    """The policy with a read-only rule for every path it lacks; returns the new text
    and the paths added (existing rules are kept as written)."""
    added = [p for p in dict.fromkeys(paths) if f'path "{p}"' not in hcl]
    blocks = "".join(f'path "{p}" {{\n  capabilities = ["read"]\n}}\n' for p in added)
    if blocks:
        hcl = hcl.rstrip("\n") + "\n# granted by `harness eso grant`\n" + blocks
    return hcl, added


def grants_file(state_dir: Path) -> Path:
    """Where an environment's ESO grants are recorded."""
    return state_dir / "vault" / "eso-grants"


def recorded_grants(state_dir: Path) -> list[str]:
    """The policy paths `harness eso grant` added to this environment, in order."""
    recorded = grants_file(state_dir)
    return recorded.read_text().split() if recorded.exists() else []


def record_grants(state_dir: Path, paths: list[str]) -> None:
    """Add policy paths to the record (each once)."""
    known = recorded_grants(state_dir)
    if new := [p for p in paths if p not in known]:
        recorded = grants_file(state_dir)
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text("".join(f"{p}\n" for p in [*known, *new]))
