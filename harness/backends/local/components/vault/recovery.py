"""Disaster recovery, as the spec's runbook does it: the `bao` CLI (the runbook's
`vault ...`), `operator raft snapshot save`, the disaster itself (every node and its raft
data gone) and the restore onto a fresh cluster unsealed with the ORIGINAL keys."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.backends.local.components.vault.raft import RaftOperations, _until
from harness.backends.local.components.vault.templates import KEY_SHARES, KEY_THRESHOLD
from harness.errors import HarnessError
from harness.runtime.redact import REDACTOR, redact


class DisasterRecovery(RaftOperations):
    """Raft snapshots and the restore of a wiped cluster (HA profiles)."""

    # ---- the runbook ---------------------------------------------------------------------
    def bao(self, *args: str, token: str | None = None, node: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the `bao` CLI (the runbook's `vault ...`) against the `vault-active`
        Service (what must reach the leader: snapshots, step-down) or a node; the token
        goes through the environment, never argv."""
        address = self.node_address(node) if node else self.active_address
        env = {"BAO_ADDR": address, "VAULT_ADDR": address,
               "BAO_TOKEN": token or self.root_token(), "PATH": "/usr/bin:/bin",
               "HOME": str(self._dir)}
        env["VAULT_TOKEN"] = env["BAO_TOKEN"]
        if self.tls:
            env["BAO_CACERT"] = env["VAULT_CACERT"] = str(self.ctx.pki.ca_cert)
        result = subprocess.run([self.server_binary(), *args], env=env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise HarnessError(redact(f"`bao {' '.join(args[:4])}` failed "
                                      f"({result.returncode}): {result.stderr.strip()[-500:]}"))
        return result

    def snapshot_save(self, path: Path) -> Path:
        """`vault operator raft snapshot save <path>` (0600: it holds the encrypted
        data and keyring). Every profile has raft storage now: dev's one node too."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.bao("operator", "raft", "snapshot", "save", str(path))
        path.chmod(0o600)
        return path

    def wipe_cluster(self) -> None:
        """Disaster: every node killed and its raft data deleted (the Service stays)."""
        for node in self.node_names:
            proc = self.process(node)
            proc.kill()
            proc.wipe_data()

    def restore_cluster(self, snapshot: Path, step: Callable[[str], None] = lambda _m: None,
                        timeout: float = 60) -> None:
        """A fresh cluster from a snapshot, as the runbook does it by hand:
        start one empty node, `operator init` it (throw-away keys, never stored),
        `operator raft snapshot restore -force`, which replaces the keyring and seals the
        node; restart it and unseal it with the ORIGINAL keys; then the other empty
        nodes join it and are unsealed with the original keys too.

        Processes are started with start_process(), so the state file follows their pids;
        `step(message)` reports progress (drills time-stamp these)."""
        first, *others = self.node_names
        self.start_process(first)
        step(f"{first} started empty")
        temp = self.node_client(first).sys.initialize(KEY_SHARES, KEY_THRESHOLD)
        REDACTOR.add(temp["root_token"], *temp["keys"], *temp["keys_base64"])
        for key in temp["keys"][:KEY_THRESHOLD]:
            self.node_client(first).sys.submit_unseal_key(key)
        _until(lambda: self.active_node() == first, timeout=timeout, interval=0.1,
               description=f"{first} active after a fresh init")
        step(f"{first} initialized with throw-away keys")
        self.bao("operator", "raft", "snapshot", "restore", "-force", str(snapshot),
                 token=temp["root_token"], node=first)
        step("snapshot restored (-force)")
        # The restored keyring is not ours: the node seals.
        _until(lambda: self.sealed(first) is True, timeout=timeout, interval=0.1,
               description=f"{first} sealed after the snapshot restore")
        # OpenBao 2.7 keeps the throw-away seal configuration cached until the process
        # restarts ("invalid key size" for the original shares): restart, as a pod would.
        self.process(first).stop(grace=5)
        self.start_process(first)
        self.unseal(first, timeout=timeout)
        self.wait_service_ready(timeout)
        step(f"{first} unsealed with the original keys: service restored")
        for node in others:
            self.start_process(node)
        for node in others:
            self.unseal(node, timeout=timeout)
        self.wait_voters(timeout)
        self.wait_kv_ready(timeout)
        step("all nodes rejoined as voters")
