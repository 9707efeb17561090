"""Clients that talk to a running platform on ANY backend (local processes, kind,
an existing cluster): Kubernetes, Vault, Prometheus and received alerts, ESO, Argo CD,
Git. They hold no process of their own; what stands behind their addresses is the
backend's business (`harness.backends`)."""
