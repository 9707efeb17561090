"""The staging profile (same HA as production: 3-node raft Vault with TLS behind a
Service, two ESO replicas with leader election), shared by the suites of this package
and torn down after them: failover, quorum loss, control-plane restarts, backup/restore
and drills all run against one environment, each leaving it healthy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.drills.probe import Probe
from harness.kubeclient import KubeClient
from harness.platform import Platform
from harness.pytest_plugin import _settings
from harness.secrets_sync import ExternalSecrets


@pytest.fixture(scope="package")
def staging(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    settings = _settings(request.config, tmp_path_factory).with_(
        profile="staging", state_dir=tmp_path_factory.mktemp("staging"))
    plat = Platform(settings)
    plat.up(mode="session")
    yield plat
    plat.down()


@pytest.fixture(scope="package")
def staging_kube(staging: Platform) -> KubeClient:
    return KubeClient(staging.kubeconfig, str(staging.toolchain.binary("kubernetes", "kubectl")))


@pytest.fixture(scope="package")
def staging_eso(staging: Platform, staging_kube: KubeClient) -> ExternalSecrets:
    return ExternalSecrets(staging, staging_kube)


@pytest.fixture(scope="package")
def probe(staging: Platform) -> Probe:
    """A synced ExternalSecret on a TLS store of its own, and digests of what was
    written to Vault: the client's view the suites judge by."""
    p = Probe(staging)
    p.setup()
    return p
