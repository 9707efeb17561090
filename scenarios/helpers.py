"""What several scenario modules share: an ExternalSecret of one Vault key, one already
synced from a test's own store, and a pytest of its own (another backend) read back
from its junit report."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def external_secret(name: str, store: str, key: str, interval: str) -> dict:
    return {
        "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"refreshInterval": interval,
                 "secretStoreRef": {"name": store, "kind": "SecretStore"},
                 "target": {"name": name},
                 "data": [{"secretKey": "password",
                           "remoteRef": {"key": key, "property": "password"}}]},
    }


def synced_secret(eso: Any, vault: Any, store: dict, namespace: str, name: str = "app",
                  value: str = "good-value") -> str:
    """secret/<prefix>/<name> = {password: value}, its ExternalSecret `name` (1h) applied
    and the value delivered. Returns the Vault key."""
    key = f"{store['prefix']}/{name}"
    vault.kv_put(key, password=value)
    eso.apply_object(external_secret(name, store["store"], key, "1h"), namespace)
    eso.wait_value(namespace, name, "password", value)
    return key


def run_suite(args: list[str], junit: Path, env: dict[str, str] | None = None,
              timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], ET.Element, str]:
    """`pytest ARGS` in a process of its own; (the run, its junit testsuite, the output's
    last lines for assertion messages)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-rs", f"--junitxml={junit}", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout, env=env)
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-30:])
    suite = ET.parse(junit).getroot().find("testsuite") if junit.exists() else None
    assert suite is not None, tail
    return run, suite, tail
