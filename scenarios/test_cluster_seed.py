"""The cluster seed (harness/backends/local/seed.py): a fresh environment's etcd starts
from a snapshot that already holds the CRDs of ESO and Argo CD; one started without it
applies them itself; either way the CRDs are the same, and the seed keeps nothing that
belonged to the apiserver that built it."""

from __future__ import annotations

import datetime

import pytest

from harness.backends.local.components.etcd import Etcd
from harness.backends.local.environment import LocalEnvironment
from harness.backends.local.seed import FORGET_PREFIXES, build_seed
from harness.clients import manifests

pytestmark = pytest.mark.scenario


def _crds(env) -> dict[str, dict]:
    """CRD name -> (its digest annotation, when it was created)."""
    return {i["metadata"]["name"]: {
        "digest": (i["metadata"].get("annotations") or {}).get(manifests.CRD_DIGEST),
        "created": datetime.datetime.fromisoformat(i["metadata"]["creationTimestamp"])}
        for i in manifests.crd_list(env.kube_client().api_client)}


def _started(env) -> datetime.datetime:
    proc = env.process("etcd")
    return datetime.datetime.fromtimestamp(proc.create_time, datetime.UTC)


def test_a_fresh_platform_starts_with_its_crds_already_there(platform) -> None:
    crds = _crds(platform)
    eso = {n: c for n, c in crds.items() if n.endswith("external-secrets.io")}
    argo = {n: c for n, c in crds.items() if n.endswith("argoproj.io")}
    assert len(eso) == 20 and len(argo) == 3
    # Created before this environment's etcd ever ran: they came with the seed...
    assert all(c["created"] < _started(platform) for c in (*eso.values(), *argo.values()))
    # ...as the installs would have written them, so those left them alone.
    assert all(c["digest"] for c in (*eso.values(), *argo.values()))


def test_without_the_seed_the_installs_apply_the_same_crds(environment_factory,
                                                            platform) -> None:
    with environment_factory.environment(
            "unseeded", cluster_seed=False,
            components=("etcd", "kube", "vault", "eso", "git", "argocd")) as env:
        own = _crds(env)
        assert all(c["created"] >= _started(env) - datetime.timedelta(seconds=1)
                   for c in own.values() if c["digest"])
        seeded = _crds(platform)
        digests = {n: c["digest"] for n, c in own.items() if c["digest"]}
        assert len(digests) == 23
        assert digests == {n: seeded[n]["digest"] for n in digests}


def test_the_seed_keeps_the_crds_and_forgets_its_own_apiserver(environment_factory,
                                                                tmp_path) -> None:
    probe = environment_factory.settings("seedcheck")
    from harness.toolchain import Toolchain

    toolchain = Toolchain(probe.cache_dir)
    crd_file = toolchain.file("external-secrets", "crds/bundle.yaml")
    seed = tmp_path / "seed.db"
    build_seed(LocalEnvironment, probe, toolchain, [crd_file], seed)
    assert seed.stat().st_mode & 0o777 == 0o600  # Secrets would be in an etcd snapshot
    env = environment_factory.up("seedcheck-etcd", components=("etcd",))
    etcd = env.etcd
    assert isinstance(etcd, Etcd)
    env.process("etcd").stop()
    etcd.restore_data(seed)
    etcd.start_process("etcd")

    def keys(prefix: str) -> list[str]:
        out = etcd.etcdctl("get", "--prefix", "--keys-only", prefix)
        return [k for k in out.splitlines() if k.strip()]

    crds = keys("/registry/apiextensions.k8s.io/customresourcedefinitions/")
    assert len(crds) == 20 and all("external-secrets.io" in k for k in crds)
    assert keys("/registry/namespaces/kube-system")  # the apiserver's own bootstrap
    for prefix in FORGET_PREFIXES:
        assert keys(prefix) == [], prefix
    environment_factory.down(env)
