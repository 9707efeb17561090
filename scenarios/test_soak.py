"""Soak (issue 13), opt-in: `pytest scenarios/test_soak.py --harness-soak 600`.

On the staging profile, 200 ExternalSecrets keep syncing while, in turn, the Vault
leader is killed (and comes back, unsealed with the original keys), both ESO replicas
restart, and the kube-apiserver restarts. Values are rotated throughout. At the end: no
Secret is lost, none is older than its refreshInterval plus a tolerance, every value is
the latest one written, and ESO's RSS is flat. The figures are printed and written to
`soak.json` in the test's temporary directory.

Bounded: the loop stops after --harness-soak seconds; every wait has a deadline.
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest
from kubernetes import client

from harness.testing import (
    EnvironmentFactory,
    ExternalSecretsClient,
    LocalEnvironment,
    eventually,
    make_test_store,
)

pytestmark = [pytest.mark.slow, pytest.mark.soak]

COUNT = 200
INTERVAL = 30  # seconds: each ExternalSecret's refreshInterval
TOLERANCE = 30  # seconds past the interval a refresh may lag while faults are injected
FAULT_EVERY = 45  # seconds between faults
NAMESPACE = "soak"


def _external_secret(i: int, store: str, key: str) -> dict[str, object]:
    return {"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": f"s{i:03d}"},
            "spec": {"refreshInterval": f"{INTERVAL}s", "target": {"name": f"s{i:03d}"},
                     "secretStoreRef": {"name": store, "kind": "SecretStore"},
                     "data": [{"secretKey": "value",
                               "remoteRef": {"key": key, "property": "value"}}]}}


def _eso_rss_mib(env: LocalEnvironment) -> float:
    return sum(p.rss_bytes() for p in env.component("eso").processes()) / 2**20


def _kill_vault_leader(env: LocalEnvironment) -> str:
    vault = env.vault
    leader = eventually(vault.active_node, timeout=60, description="a Vault leader")
    env.process(leader).kill()
    vault.wait_new_active(leader, timeout=60)
    env.start_process(leader)
    vault.unseal(leader)
    return f"Vault leader {leader} killed, restarted, unsealed"


def _restart_eso(env: LocalEnvironment) -> str:
    for proc in env.component("eso").processes():
        env.restart_process(proc.name)
    return "both ESO replicas restarted"


def _restart_apiserver(env: LocalEnvironment) -> str:
    env.restart_process("kube-apiserver")
    return "kube-apiserver restarted"


FAULTS = (_kill_vault_leader, _restart_eso, _restart_apiserver)


def test_200_external_secrets_keep_syncing_through_faults(
        environment_factory: EnvironmentFactory, soak_seconds: float, tmp_path: Path) -> None:
    with environment_factory.environment(
            "soak", profile="staging",
            components=("etcd", "kube", "vault", "eso")) as env:
        kube = env.kube_client()
        eso = ExternalSecretsClient(env, kube)
        kube.core.create_namespace(client.V1Namespace(
            metadata=client.V1ObjectMeta(name=NAMESPACE)))
        store = make_test_store(env.vault, eso, NAMESPACE)
        written: dict[int, str] = {}
        t0 = time.monotonic()
        for i in range(COUNT):
            written[i] = f"v0-{i}"
            env.vault.kv_put(f"{NAMESPACE}/k{i:03d}", value=written[i])
            eso.apply_object(_external_secret(i, store["store"], f"{NAMESPACE}/k{i:03d}"),
                             NAMESPACE)
        eventually(lambda: all(eso.secret_value(NAMESPACE, f"s{i:03d}", "value") == v
                               for i, v in written.items()), timeout=300, interval=2,
                   description=f"all {COUNT} Secrets synced")
        first_sync = time.monotonic() - t0

        rng = random.Random(13)
        rss: list[tuple[float, float]] = []
        faults: list[tuple[float, str, float]] = []
        rotations = 0
        start = time.monotonic()
        next_fault = start + FAULT_EVERY
        kinds = itertools.cycle(FAULTS)
        while time.monotonic() - start < soak_seconds:
            for i in rng.sample(range(COUNT), 10):  # rotate a few values
                written[i] = f"v{rotations + 1}-{i}"
                eventually(lambda i=i: env.vault.kv_put(f"{NAMESPACE}/k{i:03d}",
                                                        value=written[i]) or True,
                           timeout=60, interval=0.5, description="a write during the soak")
            rotations += 1
            rss.append((time.monotonic() - start, _eso_rss_mib(env)))
            if time.monotonic() >= next_fault:
                f0 = time.monotonic()
                what = next(kinds)(env)
                faults.append((round(f0 - start, 1), what, round(time.monotonic() - f0, 1)))
                next_fault = time.monotonic() + FAULT_EVERY
            time.sleep(5)  # pacing between rotation rounds, not a wait for a condition

        # Settle: one interval plus tolerance for the last writes to arrive.
        def all_current() -> bool:
            stale = [i for i, v in written.items()
                     if eso.secret_value(NAMESPACE, f"s{i:03d}", "value") != v]
            if stale:
                raise AssertionError(f"{len(stale)} Secret(s) not at the latest value")
            return True

        eventually(all_current, timeout=INTERVAL + TOLERANCE, interval=2,
                   description="every Secret at the latest value written")
        now = time.time()
        ages = []
        for i in range(COUNT):
            status = eso.get(NAMESPACE, f"s{i:03d}").get("status", {})
            stamp = datetime.fromisoformat(status["refreshTime"].replace("Z", "+00:00"))
            ages.append(now - stamp.timestamp())
        secrets = kube.core.list_namespaced_secret(NAMESPACE).items
        third = max(1, len(rss) // 3)
        early = statistics.median(r for _t, r in rss[:third])
        late = statistics.median(r for _t, r in rss[-third:])
        figures = {
            "external_secrets": COUNT, "soak_seconds": round(time.monotonic() - start, 1),
            "first_sync_seconds": round(first_sync, 1), "rotation_rounds": rotations,
            "faults": faults, "max_refresh_age_seconds": round(max(ages), 1),
            "eso_rss_mib": {"early_median": round(early, 1), "late_median": round(late, 1),
                            "max": round(max(r for _t, r in rss), 1)},
        }
        (tmp_path / "soak.json").write_text(json.dumps(figures, indent=2))
        print("\nsoak figures: " + json.dumps(figures))
        assert len([s for s in secrets if s.metadata.name.startswith("s")]) == COUNT
        assert max(ages) <= INTERVAL + TOLERANCE
        assert len(faults) >= min(3, int(soak_seconds // FAULT_EVERY))
        assert late <= early * 1.25 + 10  # flat: no growth beyond noise
