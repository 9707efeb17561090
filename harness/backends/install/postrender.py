"""Helm post-renderer for the chart-installed backends (`helm ... --post-renderer python
-m harness.backends.install.postrender openbao[,pin]`). Reads rendered manifests on
stdin, writes them to stdout.

- `openbao`: the Vault chart (hashicorp/vault-helm; OpenBao's own chart is not served by
  any source reachable here) starts `vault server` and probes with `vault status`. The
  OpenBao image ships `bao` (and `vault` as a link): the server commands are renamed,
  and every VAULT_* variable the chart sets is mirrored as BAO_* (OpenBao reads those).
  OpenBao's Kubernetes service registration labels its Pods `openbao-active`,
  `openbao-sealed`, ... where Vault writes `vault-active`: the chart's `vault-active` and
  `vault-standby` Services select by the new names (with the old ones they never had an
  endpoint: found when the host reached Vault through `vault-active`).
- `pin`: every Pod template on the pods backend's real node (its label and the toleration
  of its taint) — the Vault chart ignores nodeSelector/tolerations in dev mode.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

RENAMES = (("docker-entrypoint.sh vault server", "docker-entrypoint.sh bao server"),
           ("vault status", "bao status"),
           ("pidof vault", "pidof bao"))  # the chart's preStop: else every stop waits out
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


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


REGISTRATION_LABELS = ("vault-active", "vault-sealed", "vault-initialized",
                       "vault-perf-standby", "vault-version")


def openbao(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") == "Service":
        selector = (doc.get("spec") or {}).get("selector") or {}
        for old in REGISTRATION_LABELS:
            if old in selector:
                selector["openbao-" + old.removeprefix("vault-")] = selector.pop(old)
        return doc
    if doc.get("kind") != "StatefulSet":
        return doc
    doc = _rename(doc)
    for c in doc["spec"]["template"]["spec"].get("containers", []):
        env = c.setdefault("env", [])
        names = {e.get("name") for e in env}
        for e in list(env):
            name = str(e.get("name", ""))
            if name.startswith("VAULT_") and "BAO_" + name[6:] not in names:
                env.append({**e, "name": "BAO_" + name[6:]})
    return doc


def pin(doc: dict[str, Any]) -> dict[str, Any]:
    from harness.backends.local.components.node.addons import on_real_node

    if doc.get("kind") in WORKLOADS:
        spec = doc["spec"]["template"].setdefault("spec", {})
        spec["tolerations"] = [t for t in spec.get("tolerations") or []
                               if t.get("key") != "heracles.dev/real-node"]
        on_real_node(spec)
    return doc


TRANSFORMS = {"openbao": openbao, "pin": pin}


def main(argv: list[str]) -> int:
    names = argv[0].split(",") if len(argv) == 1 else []
    if not names or any(n not in TRANSFORMS for n in names):
        print("usage: python -m harness.backends.install.postrender "
              f"{{{','.join(TRANSFORMS)}}}[,...]", file=sys.stderr)
        return 2
    docs = [d for d in yaml.safe_load_all(sys.stdin) if isinstance(d, dict)]
    for name in names:
        docs = [TRANSFORMS[name](d) for d in docs]
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
