"""A GitOps tree as Argo CD and `kubectl apply` see it: manifests (load -> validate ->
rewrite -> apply) and a team's platform repository (scan, discover, seed, apply, serve)."""
