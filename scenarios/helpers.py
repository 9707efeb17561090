"""What several scenario modules share: an ExternalSecret of one Vault key, one already
synced from a test's own store, and a pytest of its own (another backend) read back
from its junit report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.wait import eventually

ROOT = Path(__file__).resolve().parents[1]


def external_secret(name: str, store: str, key: str, interval: str,
                    kind: str = "SecretStore", secret_key: str = "password",
                    prop: str = "password") -> dict:
    return {
        "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"refreshInterval": interval,
                 "secretStoreRef": {"name": store, "kind": kind},
                 "target": {"name": name},
                 "data": [{"secretKey": secret_key,
                           "remoteRef": {"key": key, "property": prop}}]},
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


def denied_after_sync(eso: Any, vault: Any, store: dict, namespace: str) -> str:
    """An ExternalSecret `app` synced, then its store's policy revoked and a sync forced:
    ESO really failing (SecretSyncedError), as the ESO failure alerts watch. Returns the
    Vault key."""
    from harness.clients.eso import set_store_access

    key = synced_secret(eso, vault, store, namespace, value="v1")
    set_store_access(vault, store, allowed=False)
    eso.force_sync(namespace, "app")
    eso.wait_error(namespace, "app")
    return key


def settled(eso: Any, namespace: str, name: str, quiet: float = 1.0,
            timeout: float = 30) -> None:
    """Until the ExternalSecret's status.refreshTime has not moved for `quiet` seconds.
    Right after ESO creates a Secret, the reconcile its own Secret event triggers can
    read a cached ExternalSecret without the new status and fetch from Vault once more
    (seen in CI: a write 0.2 s after the first sync was delivered despite 1h); tests that
    judge the schedule start after that burst."""
    last: dict[str, Any] = {"stamp": None, "since": time.monotonic()}

    def quiet_long_enough() -> bool:
        stamp = eso.get(namespace, name).get("status", {}).get("refreshTime")
        if stamp != last["stamp"]:
            last.update(stamp=stamp, since=time.monotonic())
        return stamp is not None and time.monotonic() - last["since"] >= quiet

    eventually(quiet_long_enough, timeout=timeout, interval=0.1,
               description=f"ExternalSecret {namespace}/{name} settled after its sync")


def outside_xdist(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a pytest of its own started from an xdist worker: without the
    worker's PYTEST_XDIST_* variables, which would make it believe it is a worker too."""
    return {k: v for k, v in (os.environ if env is None else env).items()
            if not k.startswith("PYTEST_XDIST")}


def run_suite(args: list[str], junit: Path, env: dict[str, str] | None = None,
              timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], ET.Element, str]:
    """`pytest ARGS` in a process of its own; (the run, its junit testsuite, the output's
    last lines for assertion messages)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-n", "0", "-rs", f"--junitxml={junit}", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout,
                         env=outside_xdist(env))
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-30:])
    suite = ET.parse(junit).getroot().find("testsuite") if junit.exists() else None
    assert suite is not None, tail
    return run, suite, failures(suite) + tail


def run_backend_suite(backend: str, profile: str, files: list[str], extra: list[str],
                      junit: Path, timeout: float = 2400
                      ) -> tuple[subprocess.CompletedProcess[str], ET.Element, str]:
    """Suites in a pytest of their own on a chart backend (`pods`, `kind`), in a short
    state dir (the kubelet's sockets live under it: 107 bytes), removed after; no
    seeded secret value may appear in what they printed (diagnostics are redacted)."""
    from harness.vault_config.seed import parse_seed

    state = Path(tempfile.mkdtemp(prefix="hs-", dir="/tmp"))
    try:
        run, suite, tail = run_suite(
            ["--harness-backend", backend, "--harness-profile", profile,
             "--harness-state-dir", str(state), *extra, *files], junit, timeout=timeout)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    seeds = [v for _m, _p, values in parse_seed(ROOT / "fixtures" / "vault" / "seed.txt")
             for k, v in values.items() if "password" in k or "secret" in k]
    leaked = [v for v in seeds if v in run.stdout + run.stderr]
    assert not leaked, f"{len(leaked)} seeded value(s) printed by the suites"
    return run, suite, tail


def failures(suite: ET.Element, lines: int = 6) -> str:
    """Each failed or erred test's name and the first lines of its message: the output's
    tail alone is often a diagnostics dump that names no test."""
    out = []
    for case in suite.iter("testcase"):
        for bad in [*case.findall("failure"), *case.findall("error")]:
            said = [line for line in (bad.text or "").splitlines() if line.startswith("E ")]
            text = [(bad.get("message") or "").splitlines()[:1], said[:lines]]
            head = "\n".join(f"    {line}" for part in text for line in part)
            out.append(f"{bad.tag.upper()} {case.get('name')}:\n{head}")
    return "\n".join(out) + ("\n---\n" if out else "")


# ---- the redaction sweep (scenarios/test_zz_redaction_sweep.py, and conftest.py under xdist)
def seeded_values(fixtures_dir: Path) -> list[str]:
    """The values the Vault seed writes (usernames aside): what no file may hold."""
    from harness.vault_config.seed import parse_seed

    return [v for _m, _p, values in parse_seed(fixtures_dir / "vault" / "seed.txt")
            for k, v in values.items() if k != "username"]


def harness_files(root: Path) -> list[Path]:
    """What the harness writes that a reader sees: logs and state records."""
    return [path for path in root.rglob("*")
            if path.is_file() and (path.parent.name == "logs" or path.name == "environment.json")]


def secret_leaks(texts: dict[str, str], secrets: list[str]) -> list[tuple[str, str]]:
    """(name, a hint of the value) for every secret value standing as a token of its own
    in a text: "harbor-secret" inside the namespace "t-...-harbor-secrets-are-..." is a
    test name, not a leak. The hint is three characters, never the value."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    out = []
    for name, text in texts.items():
        # A plain substring test first (a regex per value and file made the sweep take
        # minutes on a CI run's logs); the token test only where a value occurs at all,
        # the longest value first, so one inside another is still told apart.
        present = [v for v in values if v in text]
        if not present:
            continue
        either = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, present))
                            + r")(?![\w-])")
        out += [(name, value[:3] + "...")
                for value in sorted({m.group(0) for m in either.finditer(text)})]
    return out


def file_texts(files: list[Path]) -> dict[str, str]:
    return {str(f): f.read_text(errors="replace") for f in files}
