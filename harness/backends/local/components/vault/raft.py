"""What is done to a running raft cluster: `operator init` and unseal, sys/health per
node, the active node, raft voters, readiness of the Service and of the KV mount, and
reloading auth backends on standbys. Kept apart from the component's files and processes
so the component stays a description of what runs; this layer says how it is operated.

`Vault` (component.py) supplies the shape it works on: node names and addresses, TLS,
the root token and the unseal keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from harness.backends.local.components.base import Component
from harness.backends.local.components.vault.templates import (
    DEV_KEY_SHARES,
    DEV_KEY_THRESHOLD,
    KEY_SHARES,
    KEY_THRESHOLD,
)
from harness.clients.vault import VaultAdmin
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import http_get
from harness.runtime.redact import REDACTOR
from harness.wait import eventually

T = TypeVar("T")


def _until(check: Callable[[], T | None], timeout: float, interval: float,
           description: str,
           retry_on: tuple[type[Exception], ...] = (AssertionError,)) -> T:
    """eventually(), failing with HarnessError as these waits always have: a Vault that
    does not come up is an environment failure, not a test's assertion. Only "not yet"
    (AssertionError, unless told otherwise) is retried; any other error propagates."""
    return eventually(check, timeout=timeout, interval=interval, description=description,
                      error=HarnessError, retry_on=retry_on)


class RaftOperations(VaultAdmin, Component):
    """Operating the nodes of a Vault cluster (and the single dev node, where it applies)."""

    # ---- what the component supplies ---------------------------------------------------
    @property
    def node_names(self) -> list[str]:
        raise NotImplementedError

    def node_address(self, node: str) -> str:
        raise NotImplementedError

    @property
    def tls(self) -> bool:
        raise NotImplementedError

    @property
    def init_file(self) -> Path:
        raise NotImplementedError

    @property
    def root_token_file(self) -> Path:
        raise NotImplementedError

    def root_token(self) -> str:
        raise NotImplementedError

    def unseal_keys(self) -> list[str]:
        raise NotImplementedError

    def init_data(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def active_address(self) -> str:
        raise NotImplementedError

    @property
    def ha(self) -> bool:
        raise NotImplementedError

    @property
    def _dir(self) -> Path:
        raise NotImplementedError

    def server_binary(self) -> str:
        raise NotImplementedError

    # ---- one node ------------------------------------------------------------------------
    def node_client(self, node: str, token: str | None = "") -> Any:
        """hvac client for one node, bypassing the Service (unauthenticated by default:
        init, unseal and health need no token)."""
        import hvac

        return hvac.Client(url=self.node_address(node), token=token or None,
                           verify=str(self.ctx.pki.ca_cert) if self.tls else True)

    def health(self, node: str) -> dict[str, Any]:
        """sys/health of one node (initialized, sealed, standby), whatever its state."""
        status, body = http_get(
            f"{self.node_address(node)}/v1/sys/health?uninitcode=200&sealedcode=200"
            "&standbycode=200&perfstandbyok=true",
            ca=self.ctx.pki.ca_cert if self.tls else None)
        if status == 500 and body.strip().startswith(b"{"):
            # Mid-transition (restoring a snapshot, sealing): "error checking health".
            raise HarnessError(f"{node}: sys/health answered 500 (in transition)")
        if status != 200:
            raise HarnessError(f"{node}: sys/health answered {status}")
        return dict(json.loads(body))

    def sealed(self, node: str) -> bool | None:
        """True/False, or None while the node does not answer (down, in transition)."""
        try:
            return bool(self.health(node)["sealed"])
        except (HarnessError, OSError):
            return None

    # ---- init and unseal -----------------------------------------------------------------
    def initialize_and_unseal(self, timeout: float = 60) -> None:
        """`operator init` once (HA: 5 shares, threshold 3; dev: one key); unseal every
        sealed node with the original keys."""
        import hvac

        first = self.node_names[0]
        shares, threshold = ((KEY_SHARES, KEY_THRESHOLD) if self.ha
                             else (DEV_KEY_SHARES, DEV_KEY_THRESHOLD))
        if not self.health(first)["initialized"]:
            result = self.node_client(first).sys.initialize(shares, threshold)
            REDACTOR.add(result["root_token"], *result["keys"], *result["keys_base64"])
            write_private(self.init_file, json.dumps({
                "keys": result["keys"], "keys_base64": result["keys_base64"],
                "root_token": result["root_token"], "shares": shares,
                "threshold": threshold}).encode())
            write_private(self.root_token_file, result["root_token"].encode())
            self.unseal(first, timeout=timeout)
            # Autopilot promotes a joined node to voter after it has been stable this
            # long (10 s by default): shortened so `up` is not 10 s slower. Right after
            # unseal the node may still be becoming active: retried.
            def autopilot_configured() -> bool:
                self.node_client(first, self.root_token()).write_data(
                    "sys/storage/raft/autopilot/configuration",
                    data={"server_stabilization_time": "2s", "cleanup_dead_servers": False})
                return True

            _until(autopilot_configured, timeout=timeout, interval=0.3,
                   description=f"autopilot configured on {first}",
                   retry_on=(hvac.exceptions.VaultError,))
        for node in self.node_names:
            self.unseal(node, timeout=timeout)
        self.wait_voters(timeout)

    def unseal(self, node: str, keys: list[str] | None = None, timeout: float = 60) -> bool:
        """`vault operator unseal` with `keys` (default: the threshold of the original
        keys) until unsealed. Fewer keys than the threshold leave it sealed: False, and
        the partial progress is reset. A follower takes the keys while retry_join is
        still reaching the leader, so refusals are retried until the deadline."""
        import hvac

        threshold = int(self.init_data().get("threshold", KEY_THRESHOLD))
        keys = self.unseal_keys()[:threshold] if keys is None else keys
        client = self.node_client(node)

        def submit() -> str:
            sealed = self.sealed(node)
            if sealed is None:
                raise AssertionError(f"{node} does not answer sys/health")
            if not sealed:
                return "unsealed"
            try:
                resp: dict[str, Any] = {}
                for key in keys:
                    resp = client.sys.submit_unseal_key(key)
            except hvac.exceptions.VaultError as exc:
                raise AssertionError(f"{node} refused the keys: {exc}") from None
            if resp and not resp.get("sealed", True):
                return "unsealed"
            if len(keys) < threshold:
                client.sys.submit_unseal_key(reset=True)
                return "below threshold"
            raise AssertionError(f"{node} still sealed after {len(keys)} key(s)")

        outcome = _until(submit, timeout=timeout, interval=0.3,
                         description=f"{node} unsealed")
        return outcome == "unsealed"

    # ---- leadership and membership -------------------------------------------------------
    def active_node(self) -> str | None:
        for node in self.node_names:
            try:
                h = self.health(node)
            except (HarnessError, OSError):
                continue
            if h["initialized"] and not h["sealed"] and not h["standby"]:
                return node
        return None

    def wait_new_active(self, old: str, timeout: float = 60) -> str:
        """After `old` lost leadership (killed): the node that became active instead."""

        def new_active() -> str | None:
            node = self.active_node()
            return node if node not in (None, old) else None

        return str(eventually(new_active, timeout=timeout, interval=0.05,
                              description="a new active node"))

    def raft_servers(self) -> list[dict[str, Any]]:
        data = self.client().read("sys/storage/raft/configuration")
        return list(data["data"]["config"]["servers"])

    def wait_voters(self, timeout: float = 60) -> None:
        """Every node a raft voter: the cluster tolerates the loss of one node."""

        def all_voters() -> bool:
            # raft_servers() raises while a leader election is in progress: not yet.
            voters = {s["node_id"] for s in self.raft_servers() if s["voter"]}
            if voters != set(self.node_names):
                raise AssertionError(f"raft voters {sorted(voters)}; "
                                     f"expected {self.node_names}")
            return True

        _until(all_voters, timeout=timeout, interval=0.3,
               description="every Vault node a raft voter", retry_on=(Exception,))

    # ---- readiness -----------------------------------------------------------------------
    def wait_kv_ready(self, timeout: float = 60) -> None:
        """A fresh KV v2 mount answers "Waiting for the primary to upgrade from
        non-versioned to versioned data" for a moment: wait until it serves reads."""
        import hvac

        pending = list(self.node_names)  # the Service may route to any of them

        def all_serve_reads() -> bool:
            while pending:
                node = pending[0]
                kv = self.node_client(node, self.root_token()).secrets.kv.v2
                try:
                    kv.read_secret_version(path="heracles-harness/readiness-probe",
                                           mount_point="secret",
                                           raise_on_deleted_version=True)
                except hvac.exceptions.InvalidPath:
                    pass  # 404: the mount serves reads
                except hvac.exceptions.InvalidRequest as exc:
                    # "Upgrading from non-versioned..." (active) / "Waiting for the
                    # primary to upgrade..." (standby)
                    if "upgrad" not in str(exc).lower():
                        raise
                    raise AssertionError(f"{node}: {exc}") from None
                pending.pop(0)
            return True

        _until(all_serve_reads, timeout=timeout, interval=0.2,
               description="the KV v2 mount secret/ serves reads on every node")

    def wait_service_ready(self, timeout: float = 60) -> None:
        """The Service routes to an active node (sys/health answers 200 through it)."""

        def active_behind_service() -> bool:
            status, _ = http_get(f"{self.address}/v1/sys/health", ca=self.ctx.pki.ca_cert)
            if status != 200:
                raise AssertionError(f"sys/health answered {status}")
            return True

        _until(active_behind_service, timeout=timeout, interval=0.2,
               description=f"the Vault Service {self.address} has an active node",
               retry_on=(AssertionError, OSError))

    def serves_standby_reads(self, node: str) -> bool:
        """Whether this node, as a standby, answers reads itself (OpenBao >= 2.5's default)
        rather than forwarding them: its configuration lacks `disable_standby_reads =
        true`. The harness's own config sets it; a customer's may not."""
        config = self._dir / f"{node}.hcl"
        text = config.read_text() if config.exists() else ""
        return re.search(r"(?m)^\s*disable_standby_reads\s*=\s*true\b", text) is None

    def reload_auth_mount(self, mount: str) -> None:
        """Found here: OpenBao 2.7 standbys that serve reads answer kubernetes-auth logins
        themselves, with the config and roles they cached; after `auth/kubernetes/config`
        or a role is written they answer "permission denied" / "invalid role name" for
        ~30 s. Reloading the mount's backend on each such node (sys/plugins/reload/backend)
        makes the change effective at once. A node that forwards its reads needs none (and
        right after a failover it cannot forward this one: "active cluster node not
        found")."""
        for node in self.node_names:
            if self.sealed(node) is False and self.serves_standby_reads(node):
                self.node_client(node, self.root_token()).adapter.put(
                    "/v1/sys/plugins/reload/backend", json={"mounts": [f"auth/{mount}"]})
