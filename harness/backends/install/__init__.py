"""The platform installed from its Helm charts, one path for every backend that runs it
as Pods (kind, pods): the charts and their values per profile (`charts`), the OpenBao
post-renderer (`postrender`), and the plan — CRDs, install order, Vault init and unseal
through `kubectl exec`, Argo CD's login and repository, the port-forwards (`plan`,
`environment`). A backend brings only its cluster and how a Service reaches the host."""
