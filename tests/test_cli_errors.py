"""Issue 13's cases, one test each: bad input gives one line naming the file or object,
exit status 2, no traceback, nothing half-done. Each test failed on the code before
(commit 3c45656, and still at ad98f6b) — with a traceback, a wrong exit status, or a
message that did not name the file. Case 7 (the API server lost mid-apply) is in
test_apply_errors.py.

Only `harness.cli.main` is imported, so the same tests run against the older layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from harness.cli import main


def env_of(tmp: Path) -> dict[str, str]:
    return {"HERACLES_STATE_DIR": str(tmp / "state"),
            "HERACLES_REGISTRY_DIR": str(tmp / "registry"),
            "KUBECONFIG": str(tmp / "no-kubeconfig")}


def run(tmp: Path, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env_of(tmp))


def refused(res: Result, *names: str) -> None:
    """Exit 2 with one `error:` line naming each of `names`; no traceback."""
    assert not (res.exception and not isinstance(res.exception, SystemExit)), \
        f"crashed: {res.exception!r}"
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    for name in names:
        assert name in res.stderr, (name, res.stderr)


def write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


BINARY = bytes(range(256))


# 1. A binary file -------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["apply"], ["vault-values"], ["rules", "check"]])
def test_case1_a_binary_file_is_named_not_a_traceback(tmp_path, command):
    path = write(tmp_path, "blob.yaml", BINARY)
    res = run(tmp_path, *command, str(path))
    refused(res, str(path), "not UTF-8 text")
    assert not (tmp_path / "state").exists()


# 2. Vault values of the wrong shape ------------------------------------------------------
def test_case2_vault_values_that_are_a_list_are_named(tmp_path):
    path = write(tmp_path, "values.yaml", "- server\n- ha\n")
    refused(run(tmp_path, "vault-values", str(path)), str(path),
            "the top level must be a mapping", "got a list")


def test_case2_a_number_where_hcl_text_is_expected_names_the_key(tmp_path):
    path = write(tmp_path, "values.yaml", "server:\n  ha:\n    enabled: true\n    raft:\n"
                 "      enabled: true\n      config: 12345\n")
    refused(run(tmp_path, "vault-values", str(path)), str(path), "server.ha.raft.config",
            "HCL text", "12345 (a number)")


@pytest.mark.parametrize(("body", "key", "expected"), [
    ("server: 5\n", "server", "a mapping"),
    ("server:\n  ha: [a]\n", "server.ha", "a mapping"),
    ("server:\n  ha:\n    enabled: 'yes'\n", "server.ha.enabled", "true or false"),
    ("server:\n  ha:\n    enabled: true\n    replicas: three\n    config: 'ui = true'\n",
     "server.ha.replicas", "a whole number"),
    ("server:\n  standalone:\n    config: 'storage = 5'\n", "storage", "a block"),
    ("server:\n  standalone:\n    config:\n      storage: {raft: [1]}\n", 'storage "raft"',
     "a block of settings"),
])
def test_case2_wrong_types_at_every_level_name_key_and_expectation(tmp_path, body, key,
                                                                    expected):
    path = write(tmp_path, "values.yaml", body)
    refused(run(tmp_path, "vault-values", str(path)), str(path), key, expected)


# 3. Rules Prometheus would refuse --------------------------------------------------------
RULE = "groups:\n- name: g\n  rules:\n  - alert: VaultDown\n    expr: {expr}\n    for: {for_}\n"


def test_case3_for_banana_is_an_error_naming_file_and_rule(tmp_path):
    path = write(tmp_path, "rules.yaml", RULE.format(expr="up == 0", for_="banana"))
    refused(run(tmp_path, "rules", "check", str(path)), str(path), "group g",
            "rule VaultDown", "for: 'banana' is not a duration")


def test_case3_a_promql_parse_error_names_file_and_rule(tmp_path):
    path = write(tmp_path, "rules.yaml", RULE.format(expr="'sum(up'", for_="5m"))
    refused(run(tmp_path, "rules", "check", str(path)), str(path), "rule VaultDown",
            "'sum(up' is not valid PromQL")


def test_case3_rule_files_are_checked_before_the_environment_is_asked_for(tmp_path):
    """With no environment the file is still judged: a good one reaches "no running
    environment", a bad one never does."""
    good = write(tmp_path, "good.yaml", RULE.format(expr="up == 0", for_="5m"))
    refused(run(tmp_path, "rules", "check", str(good)), "no running environment")
    bad = write(tmp_path, "bad.yaml", RULE.format(expr="up == 0", for_="5 minutes"))
    res = run(tmp_path, "rules", "check", str(bad))
    refused(res, str(bad))
    assert "no running environment" not in res.stderr


# 4. An empty platform repo ---------------------------------------------------------------
@pytest.mark.toolchain
def test_case4_an_empty_platform_repo_is_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    refused(run(tmp_path, "apply", "--platform-repo", str(repo)), str(repo),
            "holds nothing the harness can apply")
    assert not (tmp_path / "state").exists()


# 5. Root options after the subcommand ----------------------------------------------------
def harness(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HERACLES_STATE_DIR"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args],
                          env={**env, "HERACLES_REGISTRY_DIR": str(tmp / "registry")},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("where", ["before", "after"])
def test_case5_state_dir_works_before_and_after_the_subcommand(tmp_path, where):
    state = tmp_path / "elsewhere"
    args = (["--state-dir", str(state), "status", "--json"] if where == "before"
            else ["status", "--json", "--state-dir", str(state)])
    res = harness(tmp_path, *args)
    assert "No such option" not in res.stderr
    assert json.loads(res.stdout)["state_dir"] == str(state)


def test_case5_cache_dir_works_after_the_subcommand(tmp_path):
    res = run(tmp_path, "toolchain", "status", "--json", "--cache-dir", str(tmp_path / "c"))
    assert res.exit_code == 1, res.stderr  # an empty cache: every component missing
    assert json.loads(res.stdout)["cache_dir"] == str(tmp_path / "c")


def test_case5_the_later_state_dir_wins(tmp_path):
    res = run(tmp_path, "--state-dir", str(tmp_path / "a"), "status", "--json",
              "--state-dir", str(tmp_path / "b"))
    assert json.loads(res.stdout)["state_dir"] == str(tmp_path / "b")


# 6. Status of a state directory that holds nothing ---------------------------------------
def test_case6_status_of_no_environment_exits_1(tmp_path):
    """Exit 1 since issue 17: nothing runs is a failed check, not bad input."""
    state = tmp_path / "typo"
    res = harness(tmp_path, "--state-dir", str(state), "status")
    assert res.returncode == 1, res.stdout
    assert res.stderr == f"error: no environment in {state}; run `harness up` (or check " \
                         "--state-dir)\n"
    as_json = harness(tmp_path, "--state-dir", str(state), "status", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "absent"  # still a document to read
    assert not state.exists()


# 8. The existing-backend config ----------------------------------------------------------
@pytest.mark.parametrize(("body", "names"), [
    (BINARY, ["not UTF-8 text"]),
    (b"", ["empty", "vault.address"]),
    (b"vault:\n  address: 8200\n", ["vault.address", "8200 (a number)"]),
    (b"vault: {address: https://v}\neso: [a]\n", ["eso must be a mapping"]),
    (b"vault: {address: https://v}\nfaults: {vault_pods: pods}\n",
     ["faults.vault_pods must be a mapping"]),
    (b"vault: {address: https://v}\neso: {metrics: [1, 2]}\n", ["eso.metrics"]),
])
def test_case8_existing_backend_config_names_file_and_key(tmp_path, body, names):
    path = write(tmp_path, "existing.yaml", body)
    refused(run(tmp_path, "backend", "check", str(path)), str(path), *names)
