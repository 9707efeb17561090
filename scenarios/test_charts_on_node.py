"""The kind backend's install code (charts, values, OpenBao post-renderer, init and
unseal through `kubectl exec`), which no machine here could run inside kind, run against
the real node instead: the upstream Vault chart as 3 raft Pods and the ESO chart, from
the images built here; the spec's ClusterSecretStore applied verbatim
(`http://vault.vault.svc.cluster.local:8200`, no address rewriting) syncs a Secret.

This is the ground the `pods` backend (issue 15) stands on: one environment for the
module, the platform's two charts, the runbook's own commands.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import eventually
from harness.backends.kind.environment import KindEnvironment, deep_merge
from harness.backends.local.components.node import STORAGE_CLASS
from harness.backends.local.components.node.addons import on_real_node
from harness.vault_config.seed import parse_seed

pytestmark = [pytest.mark.scenario, pytest.mark.slow]


def pinned_to_the_node(release: str, values: dict[str, Any]) -> dict[str, Any]:
    """Chart values that put every Pod of the release on the real node (one node: the
    Vault chart's anti-affinity is dropped) with volumes from its storage class."""
    place = on_real_node({})
    if release == "vault":
        return deep_merge(values, {"server": {**place, "affinity": "",
                                              "dataStorage": {"storageClass": STORAGE_CLASS}}})
    return deep_merge(values, {**place, "webhook": place, "certController": place,
                               "serviceMonitor": {"enabled": False}})


@pytest.fixture(scope="module")
def installed(environment_factory: Any, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Any, KindEnvironment]]:
    if os.geteuid() != 0:
        pytest.skip("the real node needs root")
    env = environment_factory.up("charts", components=("kube", "node"))
    try:
        env.component("node").import_images(["openbao", "external-secrets"])
        kind = KindEnvironment(env.settings.with_(state_dir=tmp_path_factory.mktemp("kind")),
                               env.toolchain)
        kind.config.kubeconfig = env.state.kubeconfig
        kind.charts = [c for c in kind.charts if c.release in ("vault", "external-secrets")]
        for chart in kind.charts:
            chart.values = pinned_to_the_node(chart.release, chart.values)
        kind.render(kind.dir)
        for step in kind.plan():
            if step.name.startswith(("preflight", "create the cluster", "load image",
                                     "port-forwards")):
                continue  # kind's own steps: the cluster and the node are already here
            if step.action:
                step.action()
                continue
            run = subprocess.run(step.argv, capture_output=True, text=True,
                                 env=kind.helm_env(), timeout=900)
            assert run.returncode == 0, f"{step.name}: {run.stderr[-2000:]}"
        yield env, kind
    finally:
        environment_factory.down(env)


def test_the_vault_chart_runs_three_unsealed_raft_pods_as_the_runbook_shows(
        installed: tuple[Any, KindEnvironment]) -> None:
    env, _kind = installed
    kube = env.kube_client()
    pods = kube.core.list_namespaced_pod("vault", label_selector="component=server").items
    assert sorted(p.metadata.name for p in pods) == ["vault-0", "vault-1", "vault-2"]
    assert {p.spec.node_name for p in pods} == {"heracles-node"}
    status = kube.kubectl("exec", "-n", "vault", "vault-0", "--", "vault", "status").stdout
    assert re.search(r"Sealed\s+false", status) and re.search(r"HA Mode\s+active", status)
    peers = kube.kubectl("exec", "-n", "vault", "vault-1", "--", "vault", "status").stdout
    assert re.search(r"HA Mode\s+standby", peers), peers  # joined through vault-internal DNS
    pvcs = kube.core.list_namespaced_persistent_volume_claim("vault").items
    assert {p.status.phase for p in pvcs} == {"Bound"} and len(pvcs) == 3


def test_the_specs_store_verbatim_syncs_a_secret_through_the_in_cluster_vault(
        installed: tuple[Any, KindEnvironment]) -> None:
    env, _kind = installed
    kube = env.kube_client()
    fixtures = env.settings.fixtures_dir
    store = fixtures / "gitops" / "secrets" / "cluster-secret-store.yaml"
    assert "http://vault.vault.svc.cluster.local:8200" in store.read_text()
    kube.kubectl("apply", "-f", str(store))  # as written: no service map
    external = fixtures / "gitops" / "secrets" / "redis-credentials.yaml"
    doc = next(d for d in _yaml_docs(external) if d.get("kind") == "ExternalSecret")
    namespace = doc["metadata"].get("namespace", "default")
    kube.kubectl("create", "namespace", namespace, check=False)
    kube.kubectl("apply", "-f", str(external))

    def synced() -> dict[str, Any]:
        got = json.loads(kube.kubectl("get", "externalsecret", "-n", namespace,
                                      doc["metadata"]["name"], "-o", "json").stdout)
        ready = [c for c in got.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if not ready or ready[0]["status"] != "True":
            raise AssertionError(ready)
        return got

    eventually(synced, timeout=120, retry_on=(AssertionError,),
               description="ExternalSecret synced through vault.vault.svc.cluster.local")
    secret = kube.core.read_namespaced_secret(doc["spec"]["target"]["name"]
                                              if doc["spec"].get("target", {}).get("name")
                                              else doc["metadata"]["name"], namespace)
    seeds = {f"{mount}/{path}": values for mount, path, values in
             parse_seed(fixtures / "vault" / "seed.txt")}
    remote = doc["spec"]["data"][0]["remoteRef"]
    expected = seeds[f"secret/{remote['key']}"][remote["property"]]
    import base64

    assert base64.b64decode(secret.data[doc["spec"]["data"][0]["secretKey"]]).decode() == \
        expected


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
