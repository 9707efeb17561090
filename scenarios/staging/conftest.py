"""The staging profile (same HA as production: 3-node raft Vault with TLS behind a
Service, two ESO replicas with leader election), shared by the suites of this package
and torn down after them: failover, quorum loss, control-plane restarts, backup/restore
and drills all run against one environment, each leaving it healthy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.drills.probe import Probe
from harness.testing import (
    EnvironmentFactory,
    ExternalSecretsClient,
    KubeClient,
    LocalEnvironment,
)


@pytest.fixture(scope="package")
def staging(environment_factory: EnvironmentFactory) -> Iterator[LocalEnvironment]:
    with environment_factory.environment("staging", profile="staging") as env:
        yield env


@pytest.fixture(scope="package")
def staging_kube(staging: LocalEnvironment) -> KubeClient:
    return staging.kube_client()


@pytest.fixture(scope="package")
def staging_eso(staging: LocalEnvironment, staging_kube: KubeClient) -> ExternalSecretsClient:
    return ExternalSecretsClient(staging, staging_kube)


@pytest.fixture(scope="package")
def probe(staging: LocalEnvironment) -> Probe:
    """A synced ExternalSecret on a TLS store of its own, and digests of what was
    written to Vault: the client's view the suites judge by."""
    p = Probe(staging)
    p.setup()
    return p
