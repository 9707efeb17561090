"""What a test does to Vault, on any backend: the runbook's `vault kv ...`, policies,
kubernetes-auth roles. The local Vault component and the remote adapter mix this in;
each supplies only how to reach its server."""

from __future__ import annotations

from typing import Any

from harness.runtime.redact import REDACTOR, secret_values


class VaultAdmin:
    """The runbook's `vault kv ...`, `vault policy write`, `vault write auth/...`."""

    def client(self, token: str | None = None, url: str | None = None) -> Any:
        raise NotImplementedError

    @property
    def tls(self) -> bool:
        """Whether clients must speak TLS to it (the in-cluster store URL's scheme)."""
        return False

    def ca_bundle(self) -> bytes | None:
        """The CA that signed its certificate, for a store's caBundle (None: none)."""
        return None

    def after_auth_write(self, mount: str) -> None:
        """Hook: make a kubernetes-auth change effective everywhere (see Vault)."""

    def write_policy(self, name: str, hcl: str) -> None:
        self.client().sys.create_or_update_policy(name=name, policy=hcl)

    def write_kubernetes_role(self, role: str, service_account: str, namespace: str,
                              policies: list[str], ttl: str = "1h",
                              mount: str = "kubernetes") -> None:
        self.client().write_data(f"auth/{mount}/role/{role}", data={
            "bound_service_account_names": service_account,
            "bound_service_account_namespaces": namespace,
            "policies": ",".join(policies), "ttl": ttl})
        self.after_auth_write(f"{mount}/")  # standbys cache roles as well

    def delete_kubernetes_role(self, role: str, mount: str = "kubernetes") -> None:
        self.client().delete(f"auth/{mount}/role/{role}")

    def kv_put(self, path: str, /, mount_point: str = "secret", **values: str) -> None:
        """`vault kv put <mount>/<path> k=v ...` (KV v2); the values become redacted."""
        REDACTOR.add(*secret_values(values))
        self.client().secrets.kv.v2.create_or_update_secret(
            path=path, secret=values, mount_point=mount_point)

    def kv_delete_tree(self, prefix: str, mount_point: str = "secret") -> None:
        """Delete every key (all versions) under prefix/."""
        import hvac

        kv = self.client().secrets.kv.v2
        try:
            keys = kv.list_secrets(path=prefix, mount_point=mount_point)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return
        for key in keys:
            if key.endswith("/"):
                self.kv_delete_tree(f"{prefix}/{key.rstrip('/')}", mount_point)
            else:
                kv.delete_metadata_and_all_versions(path=f"{prefix}/{key}",
                                                    mount_point=mount_point)

    def kv_get(self, path: str, mount_point: str = "secret") -> dict[str, str] | None:
        import hvac

        try:
            data = self.client().secrets.kv.v2.read_secret_version(
                path=path, mount_point=mount_point, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None
        return dict(data["data"]["data"])
