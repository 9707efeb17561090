"""The kind backend: a kind cluster with the platform installed from its Helm charts,
every image pinned to the local toolchain's versions (`environment.py`); the `harness
backend kind-up` session (`session.py`); a private Docker daemon to check kind's config
against (`docker.py`); the OpenBao post-renderer for the Vault chart (`postrender.py`)."""

from __future__ import annotations

from harness.backends.kind.environment import (
    KIND_CAPABILITIES,
    NODE_IMAGE,
    KindEnvironment,
    KindUnavailable,
    charts,
    cluster_config,
    validate_cluster_config,
    vault_values,
)

__all__ = ["KIND_CAPABILITIES", "NODE_IMAGE", "KindEnvironment", "KindUnavailable", "charts",
           "cluster_config", "validate_cluster_config", "vault_values"]
