"""The existing-cluster backend, proved as the issue asks: the session's running local
environment is described in an endpoints file (`harness backend export-config`) and the
portable secret-sync suites run through `--harness-backend existing` in a pytest of
their own — they reach it only through the kubeconfig, Vault's address and token, and
the ESO metrics URL, as they would reach anyone's cluster."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from harness.backends.existing import ExistingConfig, ExistingEnvironment, export_config
from harness.errors import HarnessError
from harness.faults.kube import KubeFaults
from harness.wait import eventually

from .helpers import run_suite

SUITES = ["scenarios/test_secret_sync.py", "scenarios/test_rotation.py",
          "scenarios/test_refresh_timing.py", "scenarios/test_secret_failures.py"]


def test_the_secret_sync_suites_pass_through_the_existing_backend(platform, tmp_path,
                                                                    cluster_secret_store):
    cfg = export_config(platform, tmp_path / "existing.yaml")
    assert platform.component("vault").root_token() not in cfg.read_text()
    junit = tmp_path / "junit.xml"
    run, suite, tail = run_suite(["--harness-backend", "existing",
                                  "--harness-existing-config", str(cfg), *SUITES], junit)
    token = platform.component("vault").root_token()
    assert token not in run.stdout + run.stderr + junit.read_text()  # never printed
    assert run.returncode == 0, f"portable suites failed through the existing backend:\n{tail}"
    total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    assert int(suite.get("failures", 0)) == int(suite.get("errors", 0)) == 0
    assert total - skipped >= 14, tail  # every portable test but the audit-file one ran
    reasons = [s.get("message", "") for s in suite.iter("skipped")]
    assert reasons and all("reads Vault's audit log file" in r for r in reasons), reasons


def test_an_unreachable_vault_is_named_with_the_config_file(platform, tmp_path, free_port):
    cfg = yaml.safe_load(export_config(platform, tmp_path / "e.yaml").read_text())
    cfg["vault"]["address"] = f"http://127.0.0.1:{free_port}"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(HarnessError, match=rf"{bad}: cannot reach Vault at http://127.0.0.1"):
        ExistingEnvironment(ExistingConfig.load(bad), platform.settings).up()


def test_a_missing_kubeconfig_is_named_with_the_config_file(platform, tmp_path):
    cfg = yaml.safe_load(export_config(platform, tmp_path / "e.yaml").read_text())
    cfg["kubeconfig"] = str(tmp_path / "missing-kubeconfig")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(HarnessError, match=r"kubeconfig .*missing-kubeconfig does not exist"):
        ExistingEnvironment(ExistingConfig.load(bad), platform.settings).up()


def test_pod_faults_delete_a_vault_pod_and_scale_eso(kube, namespace):
    """KubeFaults' Kubernetes operations against real controllers (on KWOK nodes): the
    deleted pod is replaced by its controller — the new pod, not a survivor — and the
    scaled Deployment is restored."""
    for name, replicas in (("vault", 2), ("external-secrets", 2)):
        kube.apps.create_namespaced_deployment(namespace, client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels={"app": name}),
                template=client.V1PodTemplateSpec(
                    # every stand-in carries the active label: "an active one" is met
                    metadata=client.V1ObjectMeta(labels={"app": name,
                                                         "vault-active": "true"}),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name=name, image="stand-in")],
                        tolerations=[client.V1Toleration(operator="Exists")])))))
    faults = KubeFaults(kube, {"vault_pods": {"namespace": namespace, "selector": "app=vault"},
                               "eso_deployment": {"namespace": namespace,
                                                  "name": "external-secrets"}})

    def running_vault_pods():
        pods = [p for p in faults.vault_pods() if p.status.phase == "Running"
                and not p.metadata.deletion_timestamp]
        return pods if len(pods) == 2 else None

    pod, survivor = eventually(running_vault_pods, timeout=60,
                               description="two stand-in Vault pods Running")
    old_uid = faults.delete_vault_pod()
    assert old_uid == pod.metadata.uid
    new = faults.wait_vault_pod_replaced(pod.metadata.name, old_uid, timeout=60)
    assert new not in (pod.metadata.name, survivor.metadata.name)
    [replacement] = [p for p in faults.vault_pods() if p.metadata.name == new]
    assert replacement.metadata.uid not in (old_uid, survivor.metadata.uid)

    def eso_replicas() -> int:
        return int(kube.apps.read_namespaced_deployment(
            "external-secrets", namespace).status.ready_replicas or 0)

    eventually(lambda: eso_replicas() == 2, timeout=60, description="stand-in ESO ready")
    with faults.eso_down():
        eventually(lambda: eso_replicas() == 0, timeout=60, description="ESO scaled to 0")
    eventually(lambda: eso_replicas() == 2, timeout=60, description="ESO back to 2")
