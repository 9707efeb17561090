"""The plugin's options: each --harness-NAME on the command line is also `harness_NAME`
in the ini file, so a team keeps its profile and backend in pyproject.toml:

    [tool.pytest.ini_options]
    harness_profile = "staging"
    harness_backend = "existing"
    harness_existing_config = "ci/heracles-existing.yaml"
    harness_platform_repo = ["."]
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.backends.base import BACKENDS
from harness.settings import PROFILES

PATHS = ("state-dir", "existing-config", "vault-values")
"""Options naming a file or directory: in the ini file, relative to the ini file."""

OPTIONS: dict[str, dict[str, Any]] = {
    "profile": {"choices": PROFILES, "help": "environment profile (default: "
                "$HERACLES_PROFILE or dev)"},
    "reuse": {"action": "store_true", "help": "attach to a running environment and leave "
              "it running afterwards"},
    "keep": {"action": "store_true", "help": "do not tear the session's environment down "
             "at the end"},
    "state-dir": {"help": "state directory (default: $HERACLES_STATE_DIR when set — the "
                  "environment `harness up` runs there is attached to — else a per-session "
                  "temporary one, or a stable one with --harness-reuse)"},
    "components": {"help": "comma-separated components (default: the profile's)"},
    "platform-repo": {"action": "append", "help": "a GitOps tree for the generic suites, "
                      "which then run in this session (repeatable)"},
    "backend": {"choices": BACKENDS, "help": "where the platform runs: local processes "
                "(default, or $HERACLES_BACKEND), Pods from its charts on the real node "
                "(pods), a kind cluster, or an existing cluster"},
    "existing-config": {"help": "the existing backend's endpoints file (default: "
                        "$HERACLES_EXISTING_CONFIG); see harness/backends/existing.py"},
    "vault-values": {"help": "your Vault Helm values (or an Argo CD Application installing "
                     "the Vault chart): the staging/prod environments use their server "
                     "configuration"},
    "soak": {"type": float, "metavar": "SECONDS", "help": "run the soak scenarios (marked "
             "`soak`) for this long; without it they are skipped"},
    "kind-image": {"choices": ("auto", "local", "official"), "help": "the kind backend's "
                   "node image: local (built here), official (kindest/node, pulled), auto "
                   "(local when built; default, or $HERACLES_KIND_IMAGE)"},
    "time-scale": {"type": float, "help": "divide alert `for:`, rule windows and "
                   "scrape/evaluation intervals by this (default: $HERACLES_TIME_SCALE or "
                   "60 in tests)"},
}
"""Every --harness-NAME option, also settable as `harness_NAME` in the ini file
(pytest.ini, tox.ini, or [tool.pytest.ini_options] in pyproject.toml); the command line
wins over the ini file, the ini file over HERACLES_* variables."""


def option(config: pytest.Config, name: str) -> Any:
    """--harness-NAME, else the ini file's harness_NAME (converted and checked as the
    option is), else None; relative ini paths are relative to the ini file."""
    value = config.getoption(f"--harness-{name}")
    if value not in (None, False, []):
        return value
    spec = OPTIONS[name]
    raw = config.getini(f"harness_{name.replace('-', '_')}")
    if raw in (None, "", []):
        return value if value is not None else None
    where = f"{config.inipath or 'the ini file'}: harness_{name.replace('-', '_')}"
    if spec.get("action") == "append":
        base = config.inipath.parent if config.inipath else config.rootpath
        return [str(base / p) for p in raw]
    if spec.get("action") == "store_true":
        return bool(raw)
    if "choices" in spec and raw not in spec["choices"]:
        raise pytest.UsageError(f"{where} = {raw!r}: choose one of "
                                f"{', '.join(spec['choices'])}")
    if spec.get("type") is float:
        try:
            return float(raw)
        except ValueError:
            raise pytest.UsageError(f"{where} = {raw!r}: not a number") from None
    if name in PATHS:
        base = config.inipath.parent if config.inipath else config.rootpath
        return str(base / raw)
    return raw
