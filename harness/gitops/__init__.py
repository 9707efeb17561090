"""A team's GitOps tree into a running environment, as Argo CD and `kubectl apply` would
take it: `platform_repo.py` reads a repository (plain YAML, kustomize), discovers what it
holds, seeds Vault and serves its Applications from the harness's Git server;
`deploy.py` applies manifests and bootstraps the app-of-apps. Loading, validating and
applying single manifests is `harness.clients.manifests`."""
