"""The customer's Vault Helm values judged against a profile: every gap is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.vault_config.values import VaultValuesError, load, node_config

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / \
    "kustomize-platform" / "helm" / "vault-values.yaml"


def values(tmp_path: Path, server_yaml: str) -> Path:
    p = tmp_path / "values.yaml"
    p.write_text(server_yaml)
    return p


def levels(vv) -> dict[str, str]:
    return {f.what: f.level for f in vv.findings}


RAFT = """server:
  ha:
    enabled: true
    replicas: {replicas}
    raft:
      enabled: true
      config: |
        listener "tcp" {{
          address = "[::]:8200"
          {tls}
        }}
        storage "raft" {{
          path = "/vault/data"
          {pm}
        }}
"""


def test_the_sample_runs_with_its_gaps_named():
    vv = load(SAMPLE, "staging")
    assert (vv.mode, vv.replicas, vv.storage) == ("ha-raft", 3, "raft")
    assert vv.blocking() == []
    assert levels(vv) == {
        "storage.raft.performance_multiplier": "risk",
        "storage.raft.retry_join": "adapted", 'seal "awskms"': "adapted",
        'listener "tcp"': "adapted", 'service_registration "kubernetes"': "adapted"}


def test_node_config_keeps_theirs_and_replaces_only_machine_bound_parts(tmp_path):
    vv = load(SAMPLE, "staging")
    cfg = json.loads(node_config(vv, "vault-1", 8200, 8201, tmp_path / "c", tmp_path / "k",
                                 tmp_path / "d", [(9200, tmp_path / "ca")]))
    assert cfg["ui"] is True and cfg["log_level"] == "info"
    assert cfg["storage"]["raft"]["snapshot_threshold"] == 4096  # their tunable
    assert cfg["storage"]["raft"]["path"] == str(tmp_path / "d")
    assert cfg["storage"]["raft"]["node_id"] == "vault-1"
    assert cfg["storage"]["raft"]["retry_join"] == [
        {"leader_api_addr": "https://127.0.0.1:9200", "leader_ca_cert_file": str(tmp_path / "ca")}]
    assert cfg["listener"]["tcp"]["address"] == "127.0.0.1:8200"
    assert "seal" not in cfg and "service_registration" not in cfg
    assert cfg["telemetry"]["prometheus_retention_time"] == "30s"  # theirs kept


def test_production_timing_leaves_nothing_at_risk(tmp_path):
    vv = load(values(tmp_path, RAFT.format(replicas=3, tls="", pm="performance_multiplier = 1")),
              "prod")
    assert levels(vv) == {"configuration": "ok", 'listener "tcp"': "adapted"}


@pytest.mark.parametrize(("replicas", "level"), [(1, "cannot"), (2, "risk"), (4, "risk")])
def test_replica_counts_that_cannot_tolerate_a_loss(tmp_path, replicas, level):
    vv = load(values(tmp_path, RAFT.format(replicas=replicas, tls="",
                                           pm="performance_multiplier = 1")), "staging")
    assert levels(vv)["server.ha.replicas"] == level


def test_tls_disabled_is_a_risk(tmp_path):
    vv = load(values(tmp_path, RAFT.format(replicas=3, tls="tls_disable = 1",
                                           pm="performance_multiplier = 1")), "staging")
    assert levels(vv)["listener.tcp.tls_disable"] == "risk"


def test_consul_storage_cannot_run_and_has_no_raft_snapshots(tmp_path):
    vv = load(values(tmp_path, 'server:\n  ha:\n    enabled: true\n    config: |\n'
                     '      storage "consul" {\n        path = "vault"\n      }\n'), "staging")
    [block] = vv.blocking()
    assert block.what == 'storage "consul"'
    assert "raft snapshot" in block.why and "cannot run" in block.why


def test_standalone_file_storage_cannot_deliver_ha(tmp_path):
    vv = load(values(tmp_path, 'server:\n  standalone:\n    config: |\n'
                     '      storage "file" {\n        path = "/vault/data"\n      }\n'), "prod")
    assert vv.mode == "standalone" and vv.replicas == 1
    assert "has no HA: cannot run the prod profile" in vv.blocking()[0].why


def test_a_dev_server_cannot_be_staging(tmp_path):
    vv = load(values(tmp_path, "server:\n  dev:\n    enabled: true\n"), "staging")
    assert vv.blocking()[0].what == "server.dev.enabled"


@pytest.mark.parametrize(("text", "message"), [
    ("server:\n  ha:\n    enabled: true\n    raft:\n      enabled: true\n",
     "server.ha.raft.config is empty"),
    ("server:\n  standalone:\n    config: |\n      storage \"file\" {\n", "not valid HCL"),
    ("server: [", "YAML error"),
])
def test_unusable_values_name_the_file_and_key(tmp_path, text, message):
    path = values(tmp_path, text)
    with pytest.raises(VaultValuesError) as err:
        load(path, "staging")
    assert str(path) in str(err.value) and message in str(err.value)


# ---- an Argo CD Application installing the chart (issue 17 part 4) ----------------------
VAULT_APP = Path(__file__).resolve().parents[1] / "fixtures" / "samples" / "vault-app" / \
    "argocd" / "vault.yaml"
HA = ("server:\n  ha:\n    enabled: true\n    replicas: 3\n    raft:\n      enabled: true\n"
      "      config: |\n        storage \"raft\" {\n          path = \"/vault/data\"\n"
      "          performance_multiplier = 1\n        }\n")


def app_file(tmp_path: Path, source: str, extra: str = "", name: str = "vault.yaml") -> Path:
    p = tmp_path / "argocd" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n"
                 "  name: vault\n  namespace: argocd\nspec:\n  project: default\n"
                 + source + "  destination:\n    namespace: vault\n" + extra)
    return p


def test_the_samples_application_with_inline_values_is_read():
    """Done-when (b), offline: the sample's Application is the values' source."""
    vv = load(VAULT_APP, "staging")
    assert (vv.mode, vv.replicas, vv.storage) == ("ha-raft", 3, "raft")
    assert vv.origin == ("Argo CD Application vault: spec.source chart vault; values from "
                         "helm.values (inline)")
    assert levels(vv)['seal "gcpckms"'] == "adapted" and vv.blocking() == []
    assert vv.report()["origin"] == vv.origin


def test_vault_values_command_accepts_the_application(tmp_path):
    """It was refused with "server.standalone.config is empty" (the Application's keys
    read as Helm values); now it is judged, and a file that is no such Application is
    named for what it is."""
    from click.testing import CliRunner

    from harness.cli import main

    ok = CliRunner().invoke(main, ["vault-values", str(VAULT_APP), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["mode"] == "ha-raft"
    other = app_file(tmp_path, "  source:\n    repoURL: https://x/r.git\n    path: apps\n")
    (tmp_path / "apps").mkdir()
    bad = CliRunner().invoke(main, ["vault-values", str(other)])
    assert bad.exit_code == 2
    assert "install no Vault/OpenBao chart" in bad.output
    assert "standalone.config" not in bad.output


def test_values_object_value_files_and_parameters_merge_as_helm(tmp_path):
    (tmp_path / "vault-chart").mkdir()
    (tmp_path / "vault-chart" / "Chart.yaml").write_text("apiVersion: v2\nname: vault\n"
                                                          "version: 0.28.0\n")
    (tmp_path / "vault-chart" / "values-prod.yaml").write_text(HA)
    p = app_file(tmp_path, "  source:\n    repoURL: https://x/r.git\n    path: vault-chart\n"
                 "    helm:\n      valueFiles: [values-prod.yaml]\n"
                 "      valuesObject:\n        server:\n          ha:\n            replicas: 4\n"
                 "      parameters:\n        - name: server.ha.replicas\n          value: '5'\n")
    vv = load(p, "prod")
    assert (vv.mode, vv.replicas) == ("ha-raft", 5)  # file < valuesObject < parameters
    assert "values-prod.yaml, helm.valuesObject (inline), --set server.ha.replicas" in \
        vv.origin


def test_multi_source_ref_value_files_and_umbrella_charts(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "vault.yaml").write_text(HA)
    p = app_file(tmp_path, "  sources:\n"
                 "    - repoURL: https://openbao.github.io/openbao-helm\n      chart: openbao\n"
                 "      helm:\n        valueFiles: [$values/env/vault.yaml]\n"
                 "    - repoURL: https://x/r.git\n      ref: values\n")
    assert load(p, "staging").mode == "ha-raft"
    (tmp_path / "platform").mkdir()
    (tmp_path / "platform" / "Chart.yaml").write_text(
        "apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n"
        "  - name: vault\n    alias: secrets\n    version: 0.28.0\n"
        "    repository: https://helm.releases.hashicorp.com\n")
    (tmp_path / "platform" / "values.yaml").write_text(
        "secrets:\n" + "".join(f"  {line}\n" for line in HA.splitlines()))
    umbrella = app_file(tmp_path, "  source:\n    repoURL: https://x/r.git\n    path: platform\n",
                        name="platform.yaml")
    vv = load(umbrella, "staging")
    assert vv.mode == "ha-raft" and "Vault as its dependency secrets" in vv.origin


@pytest.mark.parametrize(("source", "message"), [
    ("  source:\n    repoURL: https://helm.releases.hashicorp.com\n    chart: vault\n",
     "gives the Vault chart no values"),
    ("  source:\n    repoURL: https://helm.releases.hashicorp.com\n    chart: vault\n"
     "    helm:\n      values: 'server: ['\n", "spec.source.helm.values:1: YAML error"),
    ("  source:\n    repoURL: https://helm.releases.hashicorp.com\n    chart: vault\n"
     "    helm:\n      valueFiles: [values-ha.yaml]\n", "a file inside the chart vault"),
    ("  source:\n    repoURL: https://helm.releases.hashicorp.com\n    chart: vault\n"
     "    helm:\n      values: |\n        server:\n          ha:\n"
     "            enabled: yes-please\n",
     "server.ha.enabled must be true or false"),
])
def test_unusable_applications_name_the_application_and_key(tmp_path, source, message):
    p = app_file(tmp_path, source)
    with pytest.raises(VaultValuesError) as err:
        load(p, "staging")
    assert "Application vault" in str(err.value) and message in str(err.value)


def test_a_manifest_that_is_no_application_is_named(tmp_path):
    p = tmp_path / "cm.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    with pytest.raises(VaultValuesError, match="holds Kubernetes objects \\(ConfigMap/c\\), "
                                               "not Vault Helm values"):
        load(p, "staging")


def test_helm_values_for_the_chart_backends():
    from harness.vault_config.values import helm_values

    values = helm_values(VAULT_APP)
    assert values["server"]["ha"]["raft"]["enabled"] is True
    assert helm_values(SAMPLE)["server"]["ha"]["replicas"] == 3


def test_the_local_staging_vault_takes_its_config_from_the_application(tmp_path):
    """What `harness up --profile staging --vault-values argocd/vault.yaml` runs: the
    Vault component reads settings.vault_values through `load` — an Application too."""
    from types import SimpleNamespace

    from harness.backends.local.components.vault.component import Vault
    from harness.settings import Settings

    vault = object.__new__(Vault)
    vault.ctx = SimpleNamespace(settings=Settings().with_(profile="staging",
                                                          vault_values=VAULT_APP))
    assert vault.values is not None and vault.values.mode == "ha-raft"
    assert vault.node_count == 3
    cfg = json.loads(node_config(vault.values, "vault-0", 8200, 8201, tmp_path / "c",
                                 tmp_path / "k", tmp_path / "d", []))
    assert cfg["ui"] is True and cfg["storage"]["raft"]["performance_multiplier"] == 1
    assert "seal" not in cfg  # gcpckms replaced by Shamir keys (a finding says so)
