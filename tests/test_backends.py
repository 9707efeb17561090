"""Backend selection and the existing-backend endpoints file: every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import LOCAL_CAPABILITIES, missing_reason
from harness.backends.existing import BackendError, ExistingConfig


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "existing.yaml"
    p.write_text(text)
    return p


def test_a_minimal_config_resolves_relative_paths_next_to_the_file(tmp_path):
    cfg = ExistingConfig.load(write(tmp_path, "kubeconfig: kc\nvault:\n  address: "
                                    "https://v:8200\n  token_file: tok\n  ca_cert: ca.pem\n"))
    assert cfg.kubeconfig == tmp_path / "kc"
    assert cfg.vault_token_file == tmp_path / "tok"
    assert cfg.vault_ca_cert == tmp_path / "ca.pem"
    assert cfg.capabilities() == frozenset()


@pytest.mark.parametrize(("text", "message"), [
    ("vault: [", "YAML error"),
    ("- a\n", "expected a mapping"),
    ("vault: {address: x}\nprometheus_url: y\n", "unknown key(s) prometheus_url"),
    ("prometheus: http://p\n", "vault.address is required"),
    ("vault: {address: x, tokenfile: t}\n", "unknown key(s) vault.tokenfile"),
    ("vault: {address: x}\nfaults: {vault_pods: {namespace: vault}}\n",
     "faults.vault_pods needs namespace and selector"),
])
def test_config_mistakes_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(BackendError) as err:
        ExistingConfig.load(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(BackendError, match="no such file"):
        ExistingConfig.load(tmp_path / "nope.yaml")


def test_capabilities_follow_what_the_config_gives(tmp_path):
    cfg = ExistingConfig.load(write(tmp_path, """
vault: {address: x}
prometheus: http://p
eso: {metrics: http://m/metrics}
faults:
  vault_pods: {namespace: vault, selector: app=vault}
  eso_deployment: {namespace: external-secrets, name: external-secrets}
"""))
    assert cfg.capabilities() == {"prometheus", "eso-metrics", "pod-faults"}


def test_a_scenario_needing_more_than_a_backend_has_gets_the_reason():
    assert missing_reason("local", {"local-processes"}, LOCAL_CAPABILITIES) is None
    reason = missing_reason("existing", {"local-processes", "vault-audit-file"},
                            frozenset())
    assert reason is not None
    assert reason.startswith("the existing backend cannot run this: it drives the local")
    assert "audit log file" in reason
