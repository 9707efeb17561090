"""A team's GitOps tree into a running environment, as Argo CD and `kubectl apply` would
take it: `platform_repo.py` reads a repository (from its Argo CD Applications, each
rendered on its own by `argo_render.py`; without them, plain YAML and kustomize),
discovers what it holds, seeds Vault and serves its Applications from the harness's Git
server; `repo_report.py` writes what was found (md/json/html); `deploy.py` applies
manifests and bootstraps the app-of-apps. Loading, validating and
applying single manifests is `harness.clients.manifests`."""
