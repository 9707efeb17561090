"""Vault -> ESO -> Kubernetes Secret, with the spec's own ClusterSecretStore and
ExternalSecrets (fixtures/gitops/secrets), against real OpenBao and a real ESO controller."""

from __future__ import annotations

import pytest

from harness import eventually
from harness.vault_config.seed import parse_seed

pytestmark = [pytest.mark.usefixtures("cluster_secret_store"), pytest.mark.portable]


@pytest.fixture(scope="module")
def secrets_dir(platform):
    return platform.settings.fixtures_dir / "gitops" / "secrets"


@pytest.fixture
def spec_dir(platform):
    """Files verbatim from the spec (here: the broken postgres-credentials)."""
    return platform.settings.fixtures_dir / "spec"


@pytest.fixture(scope="module")
def seeded(platform, vault):
    """The values Vault holds at the runbook's seed paths ({'redis/main': {...}, ...}):
    on the local backend the spec's own seeds, on an existing cluster whatever its
    operators wrote — the Secret must carry exactly that."""
    paths = [path for _mount, path, _values in
             parse_seed(platform.settings.fixtures_dir / "vault" / "seed.txt")]
    return {path: vault.kv_get(path) for path in paths}


def test_redis_and_harbor_secrets_are_synced_with_their_templated_keys(
        eso, namespace, secrets_dir, seeded):
    eso.apply(secrets_dir / "redis-credentials.yaml", namespace)
    eso.apply(secrets_dir / "harbor-credentials.yaml", namespace)
    for name in ("redis-credentials", "harbor-credentials"):
        cond = eso.wait_synced(namespace, name)
        assert cond["message"] == "secret synced"
    assert eso.secret_data(namespace, "redis-credentials") == {
        "password": seeded["redis/main"]["password"]}
    assert eso.secret_data(namespace, "harbor-credentials") == {
        "admin-password": seeded["harbor/main"]["admin-password"],
        "secret-key": seeded["harbor/main"]["secret-key"]}


def test_the_spec_postgres_external_secret_fails_as_written(eso, namespace, spec_dir):
    """The spec's example templates {{ .password }} but fetches only `username`: ESO
    (missingkey=error) refuses to render it. The harness reports the design mistake."""
    eso.apply(spec_dir / "postgres-credentials.yaml", namespace)
    cond = eso.wait_error(namespace, "postgres-credentials")
    assert cond["reason"] == "SecretSyncedError"

    def explained():
        return any('map has no entry for key "password"' in e
                   for e in eso.events(namespace, "postgres-credentials"))

    eventually(explained, timeout=30, description="event names the missing template key")
    assert eso.secret_data(namespace, "postgres-credentials") is None


def test_postgres_syncs_once_the_template_key_is_fetched(eso, namespace, secrets_dir, seeded):
    """The GitOps repo's copy (fixtures/gitops/secrets) carries the fix: `password` is
    fetched too."""
    eso.apply(secrets_dir / "postgres-credentials.yaml", namespace)
    eso.wait_synced(namespace, "postgres-credentials")
    assert eso.secret_data(namespace, "postgres-credentials") == seeded["postgres/main"]


def test_the_secret_is_owned_by_its_external_secret_and_collected_with_it(
        eso, kube, namespace, secrets_dir):
    eso.apply(secrets_dir / "redis-credentials.yaml", namespace)
    eso.wait_synced(namespace, "redis-credentials")
    es = eso.get(namespace, "redis-credentials")
    secret = kube.core.read_namespaced_secret("redis-credentials", namespace)
    owners = secret.metadata.owner_references or []
    assert [(o.kind, o.name, o.uid, o.controller) for o in owners] == [
        ("ExternalSecret", "redis-credentials", es["metadata"]["uid"], True)]

    kube.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1beta1", namespace, "externalsecrets", "redis-credentials")

    def collected():
        return kube.absent(kube.core.read_namespaced_secret, "redis-credentials", namespace)

    eventually(collected, timeout=30, description="Secret garbage-collected with its owner")


def test_runbook_kubectl_get_externalsecrets_shows_them_synced(
        eso, kube, namespace, secrets_dir):
    for f in ("redis-credentials.yaml", "harbor-credentials.yaml"):
        eso.apply(secrets_dir / f, namespace)
    for name in ("redis-credentials", "harbor-credentials"):
        eso.wait_synced(namespace, name)
    out = kube.kubectl("get", "externalsecrets", "-n", namespace).stdout
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert {(r[0], r[-2], r[-1]) for r in rows} == {
        ("harbor-credentials", "SecretSynced", "True"),
        ("redis-credentials", "SecretSynced", "True")}
