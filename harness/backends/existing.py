"""The existing-cluster backend: the scenario suites against a platform someone already
runs — their staging cluster, a kind cluster, or a local environment started with
`harness up`. It needs a kubeconfig and a small YAML file naming the endpoints the test
runner reaches; it starts nothing and never tears anything down.

    kubeconfig: ~/.kube/config          # default: $KUBECONFIG, then ~/.kube/config
    vault:
      address: https://vault.example:8200
      token_file: ~/.vault-token        # or token_env: VAULT_TOKEN (the default)
      ca_cert: /etc/ssl/vault-ca.pem    # optional
    prometheus: http://127.0.0.1:9090   # optional: rule and metric suites
    alertmanager: http://127.0.0.1:9093 # optional
    eso:
      metrics: [http://127.0.0.1:8080/metrics]   # optional: sync-error metric checks
    service_map: {}                     # optional: in-cluster address -> address ESO
                                        # reaches, only when ESO runs outside the cluster
    faults:                             # optional: faults as Kubernetes operations
      vault_pods: {namespace: vault, selector: app.kubernetes.io/name=vault}
      eso_deployment: {namespace: external-secrets, name: external-secrets}
    objectives:                         # optional: per drill, for `harness drill run`
      vault-snapshot-restore: {rto_seconds: 60}   # (and rpo_writes:; --rto wins)

The token needs what the suites do to Vault: write KV under secret/, policies and
kubernetes-auth roles (each test makes and removes its own). It is read from its file or
variable, registered with the redactor, and never written anywhere.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.backends.base import CAPABILITIES
from harness.clients.prometheus import PrometheusAPI
from harness.clients.vault import VaultAdmin
from harness.errors import HarnessError, InputError
from harness.runtime.redact import REDACTOR
from harness.settings import Settings
from harness.toolchain import Toolchain

if TYPE_CHECKING:
    from harness.backends.local.environment import LocalEnvironment
    from harness.clients.alerts import ReceivedAlerts
    from harness.clients.kube import KubeClient
    from harness.faults.kube import KubeFaults

TOP_KEYS = {"kubeconfig", "vault", "prometheus", "alertmanager", "eso", "service_map",
            "faults", "objectives"}
OBJECTIVE_KEYS = {"rto_seconds", "rpo_writes"}
VAULT_KEYS = {"address", "token_file", "token_env", "ca_cert"}


class BackendError(HarnessError):
    """The backend's configuration or target is not usable; names the file or endpoint."""


def _path(raw: str | None, base: Path) -> Path | None:
    if not raw:
        return None
    p = Path(os.path.expanduser(raw))
    return p if p.is_absolute() else (base / p)


@dataclass
class ExistingConfig:
    source: Path
    kubeconfig: Path
    vault_address: str
    vault_token_file: Path | None = None
    vault_token_env: str = "VAULT_TOKEN"
    vault_ca_cert: Path | None = None
    prometheus: str | None = None
    alertmanager: str | None = None
    eso_metrics: list[str] = field(default_factory=list)
    service_map: dict[str, str] = field(default_factory=dict)
    faults: dict[str, dict[str, str]] = field(default_factory=dict)
    objectives: dict[str, dict[str, float]] = field(default_factory=dict)  # drill -> figures

    @classmethod
    def load(cls, path: Path | str) -> ExistingConfig:
        """Parse and check the file; every problem (unreadable, not YAML, a key unknown,
        missing or of the wrong type) is one line naming the file and the key."""
        src = Path(path).expanduser().resolve()
        where = f"existing-backend config {src}"

        def wrong(key: str, expected: str, value: Any) -> BackendError:
            return BackendError(f"{where}: {key} must be {expected}, got "
                                f"{InputError.kind_of(value)}")

        def text(node: dict[str, Any], key: str, path: str) -> str | None:
            value = node.get(key)
            if value is not None and not isinstance(value, str):
                raise wrong(path, "text (a path or URL)", value)
            if value is not None and not value.strip():
                raise BackendError(f"{where}: {path} is empty")
            return value

        def mapping(node: dict[str, Any], key: str, path: str) -> dict[str, Any]:
            value = node.get(key)
            if value is not None and not isinstance(value, dict):
                raise wrong(path, "a mapping", value)
            return value or {}

        try:
            docs = [d for d in InputError.load_yaml(src, where) if d is not None]
        except InputError as exc:
            raise BackendError(str(exc)) from None
        if len(docs) > 1:
            raise BackendError(f"{where}: {len(docs)} YAML documents; the config is one")
        raw = docs[0] if docs else None
        if raw is None:
            raise BackendError(f"{where}: empty; it needs at least vault.address "
                               "(`harness backend export-config` writes one)")
        if not isinstance(raw, dict):
            raise BackendError(f"{where}: expected a mapping at the top level, got "
                               f"{InputError.kind_of(raw)}")
        unknown = sorted(map(str, set(raw) - TOP_KEYS))
        if unknown:
            raise BackendError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(TOP_KEYS))}")
        vault = raw.get("vault")
        if vault is not None and not isinstance(vault, dict):
            raise wrong("vault", "a mapping (address:, token_file:, ...)", vault)
        if not vault or vault.get("address") is None:
            raise BackendError(f"{where}: vault.address is required")
        bad = sorted(map(str, set(vault) - VAULT_KEYS))
        if bad:
            raise BackendError(f"{where}: unknown key(s) vault.{', vault.'.join(bad)}")
        address = text(vault, "address", "vault.address")
        for key in ("token_file", "token_env", "ca_cert"):
            text(vault, key, f"vault.{key}")
        for key in ("kubeconfig", "prometheus", "alertmanager"):
            text(raw, key, key)
        base = src.parent
        kubeconfig = _path(raw.get("kubeconfig"), base) or Path(
            os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
        eso = mapping(raw, "eso", "eso")
        metrics = eso.get("metrics") or []
        if isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise wrong("eso.metrics", "a URL or a list of URLs", eso.get("metrics"))
        service_map = mapping(raw, "service_map", "service_map")
        for remote, local in service_map.items():
            if not isinstance(remote, str) or not isinstance(local, str):
                raise wrong(f"service_map[{remote!r}]", "an address (text)", local)
        faults = mapping(raw, "faults", "faults")
        for key in faults:
            mapping(faults, key, f"faults.{key}")
        for key, needed in (("vault_pods", ("namespace", "selector")),
                            ("eso_deployment", ("namespace", "name"))):
            if key not in faults:
                continue
            spec = mapping(faults, key, f"faults.{key}")
            for k in needed:
                text(spec, k, f"faults.{key}.{k}")
            if not all(spec.get(k) for k in needed):
                raise BackendError(f"{where}: faults.{key} needs {' and '.join(needed)}")
        objectives = mapping(raw, "objectives", "objectives")
        for drill in objectives:
            spec = mapping(objectives, drill, f"objectives.{drill}")
            bad = sorted(map(str, set(spec) - OBJECTIVE_KEYS))
            if bad or not spec:
                raise BackendError(f"{where}: objectives.{drill} takes "
                                   f"{' and/or '.join(sorted(OBJECTIVE_KEYS))}"
                                   + (f", not {', '.join(bad)}" if bad else ""))
            for key, value in spec.items():
                whole = key == "rpo_writes"
                if isinstance(value, bool) or not isinstance(value, int | float) or (
                        whole and not isinstance(value, int)) or value < 0 or (
                        not whole and value == 0):
                    raise wrong(f"objectives.{drill}.{key}", "a whole number >= 0" if whole
                                else "a number of seconds > 0", value)
        return cls(source=src, kubeconfig=kubeconfig, vault_address=str(address),
                   vault_token_file=_path(vault.get("token_file"), base),
                   vault_token_env=vault.get("token_env") or "VAULT_TOKEN",
                   vault_ca_cert=_path(vault.get("ca_cert"), base),
                   prometheus=raw.get("prometheus"), alertmanager=raw.get("alertmanager"),
                   eso_metrics=list(metrics), service_map=dict(service_map),
                   faults=dict(faults), objectives=dict(objectives))

    def capabilities(self) -> frozenset[str]:
        have = set()
        if self.eso_metrics:
            have.add("eso-metrics")
        if self.prometheus:
            have.add("prometheus")
        if {"vault_pods", "eso_deployment"} <= set(self.faults):
            have.add("pod-faults")
        return frozenset(have & set(CAPABILITIES))


class Remote:
    """A component the harness only reaches over the network: no process of its own to
    report in diagnostics."""

    def processes(self) -> list[Any]:
        return []

    def log_tails(self, lines: int = 20) -> dict[str, str]:
        return {}


class RemoteVault(Remote, VaultAdmin):
    """Vault (or OpenBao) at an address, administered with the configured token."""

    name = "vault"

    def __init__(self, address: str, token: str, ca_cert: Path | None = None) -> None:
        self.address = address.rstrip("/")
        self._token = token
        self.ca_cert = ca_cert
        REDACTOR.add(token)

    @property
    def tls(self) -> bool:
        return self.address.startswith("https://")

    def ca_bundle(self) -> bytes | None:
        return self.ca_cert.read_bytes() if self.ca_cert else None

    def client(self, token: str | None = None, url: str | None = None) -> Any:
        import hvac

        verify: Any = str(self.ca_cert) if self.ca_cert else True
        return hvac.Client(url=url or self.address, token=token or self._token,
                           verify=verify)

    def after_auth_write(self, mount: str) -> None:
        """OpenBao standbys cache kubernetes-auth roles (docs/toolchain.md): ask for a
        reload through the address given; a server that refuses (Vault without the
        permission) keeps its own caching behaviour."""
        import hvac

        try:
            self.client().adapter.put("/v1/sys/plugins/reload/backend",
                                      json={"mounts": [f"auth/{mount}"]})
        except hvac.exceptions.VaultError:
            pass


class RemotePrometheus(Remote, PrometheusAPI):
    name = "prometheus"

    def __init__(self, address: str) -> None:
        self._address = address.rstrip("/")

    @property
    def address(self) -> str:
        return self._address


@dataclass
class RemoteEndpoint(Remote):
    """A component the suites only reach over HTTP (ESO metrics, Alertmanager)."""

    name: str
    address: str
    metrics_addresses: list[str] = field(default_factory=list)


def _kubectl(toolchain: Toolchain) -> str:
    """The toolchain's kubectl when built, else the one on PATH."""
    if not toolchain.problem("kubernetes"):
        return str(toolchain.binary("kubernetes", "kubectl"))
    found = shutil.which("kubectl")
    if not found:
        raise BackendError("no kubectl: run `harness toolchain install --only kubernetes` "
                           "or put kubectl on PATH")
    return found


class ExistingEnvironment:
    """What the fixtures need of a platform, for a cluster the harness does not own."""

    backend = "existing"

    def __init__(self, config: ExistingConfig, settings: Settings | None = None,
                 toolchain: Toolchain | None = None) -> None:
        self.config = config
        self.settings = settings or Settings()
        self.toolchain = toolchain or Toolchain(self.settings.cache_dir)
        self.capabilities = config.capabilities()
        self.components: dict[str, Any] = {}

    @property
    def kubeconfig(self) -> str:
        return str(self.config.kubeconfig)

    @property
    def kubectl(self) -> str:
        return _kubectl(self.toolchain)

    def _token(self) -> str:
        cfg = self.config
        if cfg.vault_token_file:
            try:
                return cfg.vault_token_file.read_text().strip()
            except OSError as exc:
                raise BackendError(f"{cfg.source}: vault.token_file: {exc.strerror}: "
                                   f"{cfg.vault_token_file}") from None
        token = os.environ.get(cfg.vault_token_env, "")
        if not token:
            raise BackendError(f"{cfg.source}: no Vault token: set vault.token_file or "
                               f"${cfg.vault_token_env}")
        return token

    def up(self) -> ExistingEnvironment:
        """Connect and check that the platform is there: apiserver, ESO's CRDs, Vault
        unsealed and the token valid, Prometheus ready. Changes nothing."""
        import hvac
        import requests
        from kubernetes import client, config

        cfg = self.config
        if not cfg.kubeconfig.is_file():
            raise BackendError(f"{cfg.source}: kubeconfig {cfg.kubeconfig} does not exist")
        try:
            api = config.new_client_from_config(config_file=str(cfg.kubeconfig))
            client.VersionApi(api).get_code()
            client.ApiextensionsV1Api(api).read_custom_resource_definition(
                "externalsecrets.external-secrets.io")
        except client.ApiException as exc:
            if exc.status == 404:
                raise BackendError(f"{cfg.source}: the cluster has no ExternalSecret CRD "
                                   "(is External Secrets Operator installed?)") from None
            raise BackendError(f"{cfg.source}: Kubernetes API: {exc.status} {exc.reason}"
                               ) from None
        except Exception as exc:  # noqa: BLE001 - urllib3/config errors, named below
            raise BackendError(f"{cfg.source}: cannot reach the cluster of "
                               f"{cfg.kubeconfig}: {type(exc).__name__}: {exc}") from None
        vault = RemoteVault(cfg.vault_address, self._token(), cfg.vault_ca_cert)
        try:
            health = vault.client().sys.read_health_status(method="GET")
            if isinstance(health, dict) and health.get("sealed"):
                raise BackendError(f"{cfg.source}: Vault at {vault.address} is sealed")
            vault.client().auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            raise BackendError(f"{cfg.source}: the Vault token is not valid at "
                               f"{vault.address}") from None
        except requests.exceptions.RequestException as exc:
            raise BackendError(f"{cfg.source}: cannot reach Vault at {vault.address}: "
                               f"{type(exc).__name__}") from None
        except hvac.exceptions.VaultError as exc:
            raise BackendError(f"{cfg.source}: Vault at {vault.address}: "
                               f"{type(exc).__name__}: {exc}") from None
        self.components = {"vault": vault, "eso": RemoteEndpoint(
            "eso", ", ".join(cfg.eso_metrics), list(cfg.eso_metrics))}
        if cfg.prometheus:
            self.components["prometheus"] = RemotePrometheus(cfg.prometheus)
        if cfg.alertmanager:
            self.components["alertmanager"] = RemoteEndpoint("alertmanager", cfg.alertmanager)
        return self

    def attach(self) -> ExistingEnvironment:
        """The same as up(): connecting starts nothing."""
        return self.up()

    def down(self) -> None:
        """Nothing: the harness never destroys a cluster it did not create."""

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "config": str(self.config.source),
                "kubeconfig": self.kubeconfig, "capabilities": sorted(self.capabilities),
                "components": {n: {"address": c.address} for n, c in self.components.items()}}

    def diagnostics(self, log_lines: int = 20) -> str:
        """No process of ours to report: the endpoints the suites used."""
        return "\n".join(f"== {n}: {c.address}" for n, c in self.components.items())

    def component(self, name: str) -> Any:
        if name not in self.components:
            raise HarnessError(f"{self.config.source}: the existing backend has no {name!r} "
                               f"(configured: {', '.join(self.components) or 'none'})")
        return self.components[name]

    # ---- Environment: clients ----------------------------------------------------------
    def kube_client(self) -> KubeClient:
        from harness.clients.kube import KubeClient

        return KubeClient(self.kubeconfig, self.kubectl)

    @property
    def vault(self) -> RemoteVault:
        vault: RemoteVault = self.component("vault")
        return vault

    def prometheus(self) -> RemotePrometheus:
        prom: RemotePrometheus = self.component("prometheus")
        return prom

    def alerts(self) -> ReceivedAlerts:
        raise HarnessError(f"{self.config.source}: the {self.backend} backend has no "
                           "harness webhook receiver to read delivered alerts from")

    @property
    def eso_metrics_addresses(self) -> list[str]:
        return list(self.config.eso_metrics)

    def git_url(self) -> str:
        raise HarnessError(f"the {self.backend} backend serves no platform repository "
                           "from the harness's Git server")

    def faults(self, kube: KubeClient) -> KubeFaults:
        from harness.faults.kube import KubeFaults

        return KubeFaults(kube, self.config.faults)

    def service_map(self) -> dict[str, str]:
        return dict(self.config.service_map)

    def after_apply(self, docs: list[Any]) -> None:
        """Rules reach an existing Prometheus through its own operator, not through us."""


def export_config(env: LocalEnvironment, out: Path) -> Path:
    """An existing-backend config for a running local environment, so the portable
    suites can run against it exactly as against anyone's cluster."""
    vault = env.vault
    comps = env.components
    return write_config(ExistingConfig(
        source=out, kubeconfig=Path(env.kubeconfig), vault_address=vault.address,
        vault_token_file=vault.root_token_file,
        vault_ca_cert=vault.ctx.pki.ca_cert if vault.tls else None,
        prometheus=comps["prometheus"].address if "prometheus" in comps else None,
        alertmanager=comps["alertmanager"].address if "alertmanager" in comps else None,
        eso_metrics=env.eso_metrics_addresses,
        # ESO runs outside the (process) cluster here: in-cluster names need the map.
        service_map=env.service_map()), out)


def write_config(config: ExistingConfig, out: Path) -> Path:
    """The endpoints file for a cluster the harness reached (a local environment, the
    kind backend's cluster). No secret in it: the token stays in its own file."""
    cfg: dict[str, Any] = {
        "kubeconfig": str(config.kubeconfig),
        "vault": {"address": config.vault_address,
                  **({"token_file": str(config.vault_token_file)}
                     if config.vault_token_file else {}),
                  **({"ca_cert": str(config.vault_ca_cert)} if config.vault_ca_cert else {})}}
    if config.eso_metrics:
        cfg["eso"] = {"metrics": list(config.eso_metrics)}
    for name in ("prometheus", "alertmanager"):
        if getattr(config, name):
            cfg[name] = getattr(config, name)
    if config.service_map:
        cfg["service_map"] = dict(config.service_map)
    if config.faults:
        cfg["faults"] = dict(config.faults)
    if config.objectives:
        cfg["objectives"] = dict(config.objectives)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# heracles existing-backend config, written by the harness (no secret "
                   "in it: the Vault token stays in its 0600 file)\n"
                   + yaml.safe_dump(cfg, sort_keys=False))
    return out

