"""Runs last on purpose (pytest orders files by name): after every other suite has
seeded, rotated, broken and repaired secrets, no secret value may appear in any file the
harness wrote in this session — logs, state, audit logs — of any environment, nor in the
diagnostics a failed test would attach."""

from __future__ import annotations

from harness.runtime.redact import REDACTOR
from harness.testing import diagnostics
from scenarios.helpers import file_texts, harness_files, secret_leaks, seeded_values


def test_no_secret_value_in_any_harness_log_state_or_diagnostics(
        platform, kube, namespace, tmp_path_factory):
    seeded = seeded_values(platform.settings.fixtures_dir)
    vault = platform.component("vault")
    secrets = [*seeded, vault.root_token()]
    # Everything registered during the session: rotated values, tokens, unseal keys.
    secrets += [v for v in REDACTOR.values() if len(v) >= 8]
    roots = {platform.state.root, tmp_path_factory.getbasetemp()}
    files = sorted({f for root in roots for f in harness_files(root)})
    assert any(f.name == "vault.log" for f in files)
    assert any(f.name.endswith("-audit.log") for f in files)
    leaks = secret_leaks(file_texts(files), secrets)
    assert leaks == [], f"secret values found in harness files: {leaks}"
    text = diagnostics.collect(platform, kube, namespace)
    assert secret_leaks({"diagnostics": text}, secrets) == []
