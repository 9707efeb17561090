"""The `pods` backend: the local control plane with the real node, and the platform
installed on it from its Helm charts by the kind backend's own install plan."""
