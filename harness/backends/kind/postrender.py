"""Helm post-renderer for the kind backend (`helm ... --post-renderer python -m
harness.backends.kind.postrender openbao`): the Vault chart (hashicorp/vault-helm; OpenBao's
own chart is not served by any source reachable here) starts `vault server` and probes
with `vault status`. The OpenBao image ships `bao`: the commands are renamed, and BAO_ADDR
follows VAULT_ADDR. Reads rendered manifests on stdin, writes them to stdout."""

from __future__ import annotations

import sys
from typing import Any

import yaml

RENAMES = (("docker-entrypoint.sh vault server", "docker-entrypoint.sh bao server"),
           ("vault status", "bao status"))


def _rename(value: Any) -> Any:
    if isinstance(value, str):
        for old, new in RENAMES:
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_rename(v) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v) for k, v in value.items()}
    return value


def openbao(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != "StatefulSet":
        return doc
    doc = _rename(doc)
    for c in doc["spec"]["template"]["spec"].get("containers", []):
        env = c.setdefault("env", [])
        addr = next((e for e in env if e.get("name") == "VAULT_ADDR"), None)
        if addr and not any(e.get("name") == "BAO_ADDR" for e in env):
            env.append({"name": "BAO_ADDR", "value": addr.get("value")})
    return doc


def main(argv: list[str]) -> int:
    transforms = {"openbao": openbao}
    if len(argv) != 1 or argv[0] not in transforms:
        print(f"usage: python -m harness.backends.kind.postrender {{{','.join(transforms)}}}",
              file=sys.stderr)
        return 2
    docs = [d for d in yaml.safe_load_all(sys.stdin) if isinstance(d, dict)]
    yaml.safe_dump_all([transforms[argv[0]](d) for d in docs], sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
