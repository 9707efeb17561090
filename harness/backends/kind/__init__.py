"""The kind backend: a kind cluster with the platform installed from its Helm charts,
every image pinned to the local toolchain's versions (`environment.py`); the `harness
backend kind-up` session (`session.py`); a private Docker daemon to check kind's config
against (`docker.py`); the OpenBao post-renderer for the Vault chart (`postrender.py`)."""
