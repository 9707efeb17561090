"""What the local components generate before anything runs — Prometheus' config, the
service map, the control plane's flags, every process's argv — built from a real Context
as `LocalEnvironment._build` builds it. No process is started and no binary is run.

`Toolchain.binary()` refuses a component that is not in the cache (it checks the cache
entry's manifest, sizes and mtimes), so the Go/PyPI components get placeholder entries in
a temporary cache through the cache's own `commit()`; their paths are only computed. The
Debian components (prometheus, alertmanager, git, haproxy, redis, socat) are looked up
where the system installed them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from harness.backends.local.components.argocd import ArgoCD
from harness.backends.local.components.base import Component, Context
from harness.backends.local.components.eso import ExternalSecretsOperator
from harness.backends.local.components.etcd import Etcd
from harness.backends.local.components.git import IN_CLUSTER_URL, GitServer
from harness.backends.local.components.kube import APISERVER_NAMES, ISSUER, SERVICE_CIDR, Kube
from harness.backends.local.components.observability import (
    BASE_SCRAPE,
    Alertmanager,
    Prometheus,
    scaled,
)
from harness.backends.local.components.toxiproxy import Toxiproxy
from harness.backends.local.components.vault import IN_CLUSTER_NAMES, NODES, Vault
from harness.backends.local.profiles import COMPONENTS, PROFILE_COMPONENTS, resolve_components
from harness.backends.local.service_map import service_map
from harness.db.postgres import socket_dir
from harness.runtime.pki import PKI
from harness.runtime.process import ProcessSpec
from harness.runtime.registry import RunRegistry
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.toolchain.lock import load_lock

RUN_ID = "20250101120000-abc123"
FIRST_PORT = 31000
LOCAL_TARGET = re.compile(r"^127\.0\.0\.1:\d+$")
# A dotted quad not part of a longer dotted run (versions like v1.34.4 have three parts).
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")


# ---- building a real context without running anything -------------------------------------
@pytest.fixture(autouse=True)
def _no_socket_dir_left(tmp_path: Path) -> Iterator[None]:
    """A prod context's write_files makes PostgreSQL's socket directory, in the temp dir
    when this state dir is too long for a socket address; no server ever stops here to
    remove it, so the test does (one was left per prod test and run)."""
    yield
    outside = socket_dir(tmp_path / "state")
    if tmp_path not in outside.parents and outside.is_dir():
        outside.rmdir()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toolchain cache whose Go/PyPI entries hold placeholders that are never run."""
    root = tmp_path_factory.mktemp("cache")
    toolchain = Toolchain(root)
    for spec in toolchain.lock.components.values():
        if spec.source == "debian":
            continue
        staged = root / "staged" / spec.name
        for binary in spec.binaries:
            path = staged / binary
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"#!/bin/sh\necho 'placeholder {binary}: never run' >&2\nexit 97\n")
        for name in spec.files:
            path = staged / "files" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# placeholder {name}\n")
        toolchain.cache.commit(spec, staged, {})
        assert toolchain.problem(spec.name) == "", spec.name
    return root


def debian_problems(toolchain: Toolchain, comps: Iterable[Component]) -> list[str]:
    lock = load_lock()
    return [p for c in comps for t in c.tools()
            if lock.components[t].source == "debian" and (p := toolchain.problem(t))]


def build(tmp_path: Path, cache_dir: Path, profile: str, names: Iterable[str],
          time_scale: float = 60) -> Context:
    """Components as `LocalEnvironment._build` makes them: one Context, siblings
    registered by name in start order, every wanted port given a distinct number."""
    settings = Settings(profile=profile, state_dir=tmp_path / "state", cache_dir=cache_dir,
                        registry_dir=tmp_path / "reg", time_scale=time_scale,
                        vault_values=None, vault_binary="", components=None)
    ctx = Context(settings=settings, state=StateDir(settings.state_dir),
                  toolchain=Toolchain(settings.cache_dir),
                  registry=RunRegistry(settings.registry_dir), pki=PKI(tmp_path / "pki"),
                  run_id=RUN_ID, ports={})
    comps = {n: COMPONENTS[n](ctx) for n in resolve_components(list(names))}
    ctx.components.update(comps)
    ctx.service_map = lambda: service_map(ctx.components.values())
    port = FIRST_PORT
    for comp in comps.values():
        for key, span in comp.wanted_ports().items():
            assert key not in ctx.ports, f"two components want port {key}"
            ctx.ports[key] = port
            port += span
    return ctx


def write_all_files(ctx: Context) -> None:
    for comp in ctx.components.values():
        comp.write_files()


def all_specs(ctx: Context) -> list[ProcessSpec]:
    problems = debian_problems(ctx.toolchain, ctx.components.values())
    if problems:
        pytest.skip("Debian packages the argv names are not installed: " + "; ".join(problems))
    return [spec for comp in ctx.components.values() for spec in comp.process_specs()]


def flags(argv: list[str]) -> dict[str, str]:
    """`--name=value` arguments as a dict (each flag must appear once)."""
    out: dict[str, str] = {}
    for arg in argv[1:]:
        if arg.startswith("--") and "=" in arg:
            name, value = arg[2:].split("=", 1)
            assert name not in out, f"--{name} given twice"
            out[name] = value
    return out


def prometheus_config(ctx: Context) -> tuple[str, dict[str, Any]]:
    prom = ctx.require(Prometheus)
    # install() creates this directory, then writes the rules (reading PrometheusRules
    # from the cluster) and the config: only the config is written here.
    (ctx.state.root / "prometheus").mkdir(parents=True, exist_ok=True)
    prom.write_config()
    text = (ctx.state.root / "prometheus" / "prometheus.yml").read_text()
    return text, yaml.safe_load(text)


def targets(job: dict[str, Any]) -> list[str]:
    return [t for sc in job["static_configs"] for t in sc["targets"]]


# ---- Prometheus ---------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_every_scrape_job_is_a_components_own_and_every_target_is_loopback(
        tmp_path: Path, cache_dir: Path, profile: str) -> None:
    ctx = build(tmp_path, cache_dir, profile, PROFILE_COMPONENTS[profile])
    write_all_files(ctx)
    _text, config = prometheus_config(ctx)

    own = [job for comp in ctx.components.values() for job in comp.scrape_jobs()]
    assert config["scrape_configs"] == own
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names)), names
    expected = {"kube-apiserver", "vault", "external-secrets", "argocd"}
    assert set(names) == (expected | {"backup", "db-backup"} if profile == "prod"
                          else expected)

    used_ports = set(ctx.ports.values())
    for job in config["scrape_configs"]:
        for target in targets(job):
            assert LOCAL_TARGET.match(target), (job["job_name"], target)
            assert int(target.rsplit(":", 1)[1]) in used_ports, (job["job_name"], target)
    am = ctx.require(Alertmanager)
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [
        {"targets": [f"127.0.0.1:{ctx.port('alertmanager.web')}"]}]}]}
    assert am.address == f"http://127.0.0.1:{ctx.port('alertmanager.web')}"


def test_dev_scrape_jobs_carry_each_components_scheme_credentials_and_ports(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", PROFILE_COMPONENTS["dev"])
    write_all_files(ctx)
    _text, config = prometheus_config(ctx)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    pki = ctx.pki

    api = jobs["kube-apiserver"]
    assert api["scheme"] == "https"
    assert api["tls_config"] == {"ca_file": str(pki.ca_cert),
                                 "cert_file": str(pki.pair("client-admin").cert),
                                 "key_file": str(pki.pair("client-admin").key)}
    for path in api["tls_config"].values():
        assert Path(path).is_file(), path  # written by Kube.write_files()
    assert targets(api) == [f"127.0.0.1:{ctx.port('kube.apiserver')}"]
    # at the test time scale (x60) the others every 1 s, the apiserver every 10 s
    assert config["global"]["scrape_interval"] == "1s"
    assert (api["scrape_interval"], api["scrape_timeout"]) == ("10s", "10s")

    eso = jobs["external-secrets"]
    assert "scheme" not in eso  # plain http
    assert targets(eso) == [f"127.0.0.1:{ctx.port('eso.metrics')}"]
    assert eso.get("metrics_path", "/metrics") == "/metrics"

    argocd = jobs["argocd"]
    assert targets(argocd) == [f"127.0.0.1:{ctx.port('argocd.metrics')}",
                               f"127.0.0.1:{ctx.port('argocd.repo-metrics')}"]

    vault = jobs["vault"]
    token_file = ctx.state.root / "prometheus" / "vault-metrics-token"
    assert vault["metrics_path"] == "/v1/sys/metrics"
    assert vault["params"] == {"format": ["prometheus"]}
    assert vault["authorization"] == {"credentials_file": str(token_file)}
    # The job names the token FILE only; the token is minted in configure(), on a
    # running Vault, so none exists yet and none was needed to write the config.
    assert not token_file.exists()
    assert "scheme" not in vault and "tls_config" not in vault  # dev Vault: no TLS
    assert targets(vault) == [f"127.0.0.1:{ctx.port('vault.api')}"]


@pytest.mark.parametrize("profile", ["staging", "prod"])
def test_ha_vault_is_scraped_on_every_node_over_tls_not_through_the_service(
        tmp_path: Path, cache_dir: Path, profile: str) -> None:
    ctx = build(tmp_path, cache_dir, profile, ["vault", "prometheus"])
    _text, config = prometheus_config(ctx)
    [vault] = [j for j in config["scrape_configs"] if j["job_name"] == "vault"]

    assert vault["scheme"] == "https"
    assert vault["tls_config"] == {"ca_file": str(ctx.pki.ca_cert)}
    assert vault["metrics_path"] == "/v1/sys/metrics"
    assert vault["authorization"] == {
        "credentials_file": str(ctx.state.root / "prometheus" / "vault-metrics-token")}
    assert targets(vault) == [f"127.0.0.1:{ctx.port(f'vault-{i}.api')}" for i in range(NODES)]
    assert f"127.0.0.1:{ctx.port('vault.service')}" not in targets(vault)


def test_ha_eso_is_scraped_on_both_replicas(tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "staging", ["eso", "prometheus"])
    _text, config = prometheus_config(ctx)
    [eso] = [j for j in config["scrape_configs"] if j["job_name"] == "external-secrets"]
    assert targets(eso) == [f"127.0.0.1:{ctx.port('eso.metrics')}",
                            f"127.0.0.1:{ctx.port('eso.metrics-1')}"]


@pytest.mark.parametrize(("time_scale", "interval", "timeout"), [
    (1, "15s", "10s"),      # unscaled: Prometheus' defaults
    (5, "3s", "2s"),
    (60, "1s", "800ms"),    # 15 s / 60 = 250 ms, raised to the 1 s floor
    (1000, "1s", "800ms"),
])
def test_scrape_and_evaluation_intervals_follow_the_time_scale_with_a_floor(
        tmp_path: Path, cache_dir: Path, time_scale: float, interval: str,
        timeout: str) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["prometheus"], time_scale=time_scale)
    text, config = prometheus_config(ctx)
    assert interval == scaled(BASE_SCRAPE, time_scale)
    assert config["global"] == {"scrape_interval": interval, "evaluation_interval": interval,
                                "scrape_timeout": timeout}
    assert ctx.require(Prometheus).scrape_interval == interval
    assert text.splitlines()[0] == (f"# time scale x{time_scale:g}: scrape/evaluation every "
                                    f"{interval} (unscaled 15s)")
    assert config["rule_files"] == [str(ctx.state.root / "prometheus" / "rules" / "*.yml")]


def test_prometheus_config_without_other_components_has_no_scrape_jobs(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["prometheus"])
    assert list(ctx.components) == ["alertmanager", "prometheus"]  # its dependency added
    _text, config = prometheus_config(ctx)
    assert config["scrape_configs"] == []


def test_alertmanager_config_routes_to_the_loopback_receiver_time_scaled(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["alertmanager"])
    am = ctx.require(Alertmanager)
    am.write_files()
    config = yaml.safe_load(am.config_file.read_text())
    receiver = f"http://127.0.0.1:{ctx.port('alertmanager.receiver')}/alerts"
    assert config["receivers"] == [{"name": "harness", "webhook_configs": [
        {"url": receiver, "send_resolved": True}]}]
    assert config["route"]["receiver"] == "harness"
    assert config["route"]["group_wait"] == "500ms"  # 30 s / 60, floor 0.5 s
    assert config["route"]["group_interval"] == "5s"  # 300 s / 60


# ---- service map -----------------------------------------------------------------------------
def test_dev_service_map_leads_in_cluster_names_to_the_local_processes(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube", "vault", "git"])
    mapping = service_map(ctx.components.values())
    api = f"https://127.0.0.1:{ctx.port('kube.apiserver')}"
    vault = f"http://127.0.0.1:{ctx.port('vault.api')}"

    assert mapping["https://kubernetes.default.svc:443"] == api
    assert mapping["https://kubernetes.default.svc"] == api
    assert mapping["http://vault.vault.svc.cluster.local:8200"] == vault
    # The dev server has no TLS: every in-cluster name, by either scheme, reaches it.
    for name in IN_CLUSTER_NAMES:
        assert mapping[f"http://{name}:8200"] == vault
        assert mapping[f"https://{name}:8200"] == vault
    assert mapping[IN_CLUSTER_URL] == f"http://127.0.0.1:{ctx.port('git.http')}"
    for local in mapping.values():
        assert re.match(r"^https?://127\.0\.0\.1:\d+$", local), local


def test_with_netfault_vaults_names_lead_through_the_proxy(tmp_path: Path,
                                                           cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube", "git", "netfault"])
    assert list(ctx.components).index("netfault") > list(ctx.components).index("vault")
    mapping = service_map(ctx.components.values())
    proxy = f"http://127.0.0.1:{ctx.port('netfault.vault')}"
    for name in IN_CLUSTER_NAMES:
        assert mapping[f"http://{name}:8200"] == proxy
        assert mapping[f"https://{name}:8200"] == proxy
    # The workloads' Service goes through the proxy; `vault-active` (the operators'
    # Service, for what must reach the leader) stays direct.
    direct = f"http://127.0.0.1:{ctx.port('vault.api')}"
    assert {v for k, v in mapping.items() if "vault-active" not in k
            and ".vault" in k} == {proxy}
    assert mapping["https://vault-active.vault.svc.cluster.local:8200"] == direct
    # ...and the proxy forwards to Vault itself.
    netfault = ctx.require(Toxiproxy)
    assert netfault.upstreams() == {"vault": f"127.0.0.1:{ctx.port('vault.api')}"}
    netfault.write_files()
    proxies = yaml.safe_load((ctx.state.root / "netfault" / "proxies.json").read_text())
    assert proxies == [{"name": "vault", "listen": f"127.0.0.1:{ctx.port('netfault.vault')}",
                        "upstream": f"127.0.0.1:{ctx.port('vault.api')}", "enabled": True}]


@pytest.mark.parametrize("with_netfault", [False, True])
def test_tls_vault_keeps_the_scheme_so_an_http_store_fails_as_in_a_cluster(
        tmp_path: Path, cache_dir: Path, with_netfault: bool) -> None:
    names = ["kube", "vault", "netfault"] if with_netfault else ["kube", "vault"]
    ctx = build(tmp_path, cache_dir, "staging", names)
    mapping = service_map(ctx.components.values())
    port = ctx.port("netfault.vault" if with_netfault else "vault.service")
    for name in IN_CLUSTER_NAMES:
        assert mapping[f"https://{name}:8200"] == f"https://127.0.0.1:{port}"
        # http:// is NOT upgraded: it reaches the TLS listener in plain text and fails.
        assert mapping[f"http://{name}:8200"] == f"http://127.0.0.1:{port}"
    # Clients go through the Service (or the proxy), never to one node directly.
    node_ports = {str(ctx.port(f"vault-{i}.api")) for i in range(NODES)}
    assert not any(v.rsplit(":", 1)[1] in node_ports for v in mapping.values())


def test_git_seed_rewrites_in_cluster_addresses_but_keeps_argocds_destination(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube", "vault", "git"])
    git = ctx.require(GitServer)
    assert not any(k.startswith("https://kubernetes.default.svc") for k in git.service_map())

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "store.yaml").write_text(
        "server: http://vault.vault.svc.cluster.local:8200\n"
        "short: http://vault.vault.svc:8200\n"
        f"repoURL: {IN_CLUSTER_URL}/platform.git\n"
        "destination: https://kubernetes.default.svc\n")
    git.localize(tree)
    vault = f"http://127.0.0.1:{ctx.port('vault.api')}"
    assert yaml.safe_load((tree / "store.yaml").read_text()) == {
        "server": vault, "short": vault,
        "repoURL": f"http://127.0.0.1:{ctx.port('git.http')}/platform.git",
        "destination": "https://kubernetes.default.svc"}


# ---- the control plane's flags ----------------------------------------------------------------
def test_apiserver_binds_loopback_and_uses_the_etcd_and_tls_files_it_was_given(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube"])
    kube, etcd = ctx.require(Kube), ctx.require(Etcd)
    kube.write_files()
    specs = {s.name: s for s in kube.process_specs()}
    assert list(specs) == ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                           "kwok"]

    argv = specs["kube-apiserver"].argv
    # The binary's path comes from the toolchain cache; it is never run here.
    assert argv[0] == str(ctx.toolchain.binary("kubernetes", "kube-apiserver"))
    assert argv[0].startswith(str(cache_dir))
    f = flags(argv)
    assert f["bind-address"] == "127.0.0.1"
    assert f["advertise-address"] == "127.0.0.1"
    assert f["secure-port"] == str(ctx.port("kube.apiserver"))
    assert f["etcd-servers"] == etcd.address == f"http://127.0.0.1:{ctx.port('etcd.client')}"
    assert f["service-account-issuer"] == ISSUER
    assert f["service-cluster-ip-range"] == SERVICE_CIDR
    assert f["authorization-mode"] == "Node,RBAC"
    # Without a real node: nothing advertised to Pods, no egress to a node namespace.
    assert f["endpoint-reconciler-type"] == "none"
    assert "egress-selector-config-file" not in f
    assert f["kubelet-preferred-address-types"] == "InternalIP"
    assert "ServiceAccount" in f["enable-admission-plugins"].split(",")
    for flag in ("tls-cert-file", "tls-private-key-file", "client-ca-file",
                 "service-account-key-file", "service-account-signing-key-file"):
        assert Path(f[flag]).is_file(), flag
    for flag in ("tls-private-key-file", "service-account-signing-key-file"):
        assert Path(f[flag]).stat().st_mode & 0o777 == 0o600, flag
    assert f["client-ca-file"] == str(ctx.pki.ca_cert)

    # The serving certificate is the CA's and names what clients dial.
    ca = x509.load_pem_x509_certificate(ctx.pki.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(Path(f["tls-cert-file"]).read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    dns = set(san.get_values_for_type(x509.DNSName))
    assert {"localhost", "kubernetes.default.svc"} <= dns
    assert dns == {n for n in APISERVER_NAMES if not n[0].isdigit()}


@pytest.mark.parametrize(("process", "port_key", "client"), [
    ("kube-controller-manager", "kube.controller-manager", "controller-manager"),
    ("kube-scheduler", "kube.scheduler", "scheduler"),
])
def test_control_loops_bind_loopback_and_talk_to_the_local_apiserver(
        tmp_path: Path, cache_dir: Path, process: str, port_key: str, client: str) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube"])
    kube = ctx.require(Kube)
    kube.write_files()
    [spec] = [s for s in kube.process_specs() if s.name == process]
    f = flags(spec.argv)
    assert f["bind-address"] == "127.0.0.1"
    assert f["secure-port"] == str(ctx.port(port_key))
    assert f["leader-elect"] == "false"
    assert Path(f["tls-cert-file"]).is_file() and Path(f["tls-private-key-file"]).is_file()
    kubeconfig = Path(f["kubeconfig"])
    assert f["authentication-kubeconfig"] == f["authorization-kubeconfig"] == str(kubeconfig)
    assert kubeconfig == Path(kube.kubeconfig_path(client))
    config = yaml.safe_load(kubeconfig.read_text())
    assert [c["cluster"]["server"] for c in config["clusters"]] == [kube.address]
    assert kubeconfig.stat().st_mode & 0o777 == 0o600


def test_kwok_serves_on_loopback_and_its_nodes_report_a_loopback_ip(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", ["kube"])
    kube = ctx.require(Kube)
    kube.write_files()
    [spec] = [s for s in kube.process_specs() if s.name == "kwok"]
    f = flags(spec.argv)
    assert f["server-address"] == f"127.0.0.1:{ctx.port('kwok')}"
    assert f["node-ip"] == "127.0.0.1"
    assert f["kubeconfig"] == kube.kubeconfig_path("kwok")


# ---- every process, every profile ------------------------------------------------------------
def non_loopback_ips(text: str) -> list[str]:
    return [m for m in IPV4.findall(text) if not ipaddress.ip_address(m).is_loopback]


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_no_process_argv_names_a_wildcard_or_non_loopback_address(
        tmp_path: Path, cache_dir: Path, profile: str) -> None:
    ctx = build(tmp_path, cache_dir, profile, PROFILE_COMPONENTS[profile])
    write_all_files(ctx)
    specs = all_specs(ctx)
    names = [s.name for s in specs]
    assert len(names) == len(set(names)), names  # process records are keyed by name
    assert {"kube-apiserver", "etcd", "prometheus", "alertmanager", "git-server",
            "toxiproxy", "argocd-application-controller"} <= set(names)

    for spec in specs:
        for arg in spec.argv:
            assert "0.0.0.0" not in IPV4.findall(arg) and "[::]" not in arg, (spec.name, arg)
            if arg == f"--service-cluster-ip-range={SERVICE_CIDR}":
                continue  # ClusterIP bookkeeping inside the apiserver: nothing listens there
            assert non_loopback_ips(arg) == [], (spec.name, arg)
        assert spec.log_path == ctx.state.log(spec.name)
        if spec.data_dir is not None:
            assert spec.data_dir.is_relative_to(ctx.state.root / "data"), spec.name


@pytest.mark.parametrize("profile", ["dev", "staging", "prod"])
def test_no_file_written_for_the_processes_names_a_non_loopback_address(
        tmp_path: Path, cache_dir: Path, profile: str) -> None:
    ctx = build(tmp_path, cache_dir, profile, PROFILE_COMPONENTS[profile])
    write_all_files(ctx)
    prometheus_config(ctx)
    written = [p for p in ctx.state.root.rglob("*") if p.is_file()]
    assert ctx.state.kubeconfig in written
    assert ctx.state.root / "prometheus" / "prometheus.yml" in written
    if profile != "dev":
        assert ctx.state.root / "vault" / "haproxy.cfg" in written
        assert ctx.state.root / "vault" / "vault-0.hcl" in written
    for path in written:
        text = path.read_text()
        assert "0.0.0.0" not in IPV4.findall(text) and "[::]" not in text, path
        assert non_loopback_ips(text) == [], path


def test_component_classes_in_the_profiles_are_the_ones_tested_here() -> None:
    """If a component is added to a profile, the tests above build it too (they take the
    profile's list); this pins the classes their specific assertions rely on."""
    assert COMPONENTS["kube"] is Kube and COMPONENTS["etcd"] is Etcd
    assert COMPONENTS["vault"] is Vault and COMPONENTS["eso"] is ExternalSecretsOperator
    assert COMPONENTS["prometheus"] is Prometheus and COMPONENTS["netfault"] is Toxiproxy
    assert COMPONENTS["argocd"] is ArgoCD and COMPONENTS["git"] is GitServer
    assert set(PROFILE_COMPONENTS["dev"]) == set(PROFILE_COMPONENTS["staging"])


def test_an_interrupted_first_start_is_completed_not_refused(tmp_path: Path,
                                                              cache_dir: Path) -> None:
    """A first `write_files` cut short after the apiserver's pair: the next one issues
    what is missing (it used to skip everything once apiserver.crt existed, then failed
    reading a client certificate that was never written)."""
    ctx = build(tmp_path, cache_dir, "dev", ["kube"])
    kube = ctx.require(Kube)
    kube.write_files()
    apiserver_cert = ctx.pki.pair("apiserver").cert.read_bytes()
    for name in ("client-admin", "scheduler-serving"):
        ctx.pki.pair(name).cert.unlink()
    kube.write_files()
    assert ctx.pki.pair("client-admin").cert.exists()
    assert ctx.pki.pair("scheduler-serving").cert.exists()
    assert ctx.pki.pair("apiserver").cert.read_bytes() == apiserver_cert  # kept, not redone
    admin = yaml.safe_load(Path(kube.kubeconfig_path("admin")).read_text())
    assert admin["users"][0]["user"]["client-certificate-data"]


def test_with_a_real_node_the_apiserver_advertises_to_pods_and_egresses_to_the_node(
        tmp_path: Path, cache_dir: Path) -> None:
    from harness.backends.local.components.kube import NODE_APISERVER_IP, egress_socket
    from harness.backends.local.components.node import Node

    ctx = build(tmp_path, cache_dir, "dev", ["kube", "node"])
    kube, node = ctx.require(Kube), ctx.require(Node)
    kube.write_files()
    node.write_files()
    f = flags({s.name: s for s in kube.process_specs()}["kube-apiserver"].argv)
    assert f["advertise-address"] == NODE_APISERVER_IP
    assert f["endpoint-reconciler-type"] == "lease"
    egress = yaml.safe_load(Path(f["egress-selector-config-file"]).read_text())
    [selection] = egress["egressSelections"]
    assert selection["name"] == "cluster"
    assert selection["connection"]["transport"]["uds"]["udsName"] == str(
        egress_socket(ctx.state.root))

    specs = {s.name: s for s in node.process_specs()}
    assert list(specs) == ["node-netns", "node-bridge", "containerd", "kubelet", "kube-proxy"]
    enter = str(node.paths.enter)
    for name in ("containerd", "kubelet", "kube-proxy"):  # inside the node, in its cgroup
        assert specs[name].argv[0] == enter, name
    assert f"/heracles-{RUN_ID}/system/cgroup.procs" in node.paths.enter.read_text()
    kubelet = yaml.safe_load(node.paths.config("kubelet.yaml").read_text())
    assert kubelet["cgroupRoot"] == f"/heracles-{RUN_ID}"
    assert kubelet["resolvConf"] == ""
    containerd = node.paths.containerd_config.read_text()
    assert f'BinaryName = "{node.paths.runc_wrapper}"' in containerd
    assert "restrict_oom_score_adj = true" in containerd
    # Nothing the node writes names the host's default locations.
    for path in node.paths.root.rglob("*"):
        if path.is_file() and path.suffix in (".toml", ".yaml", ".conflist", ".kubeconfig"):
            text = path.read_text()
            for host_path in ("/var/lib/kubelet", "/etc/cni", "/opt/cni", "/var/lib/containerd"):
                assert host_path not in text, (path, host_path)
    assert str(node.paths.var_upper) in specs["node-netns"].argv[-1]  # /var overlaid


def test_an_environment_recorded_before_argocd_server_is_still_managed(tmp_path, cache_dir):
    """Its record has no port for argocd-server: status, env, logs and down still build
    its processes (the four it runs), and asking for the server names the fix."""
    from harness.errors import HarnessError

    ctx = build(tmp_path, cache_dir, "dev", ["kube", "git", "argocd"])
    del ctx.ports["argocd.server"], ctx.ports["argocd.server-metrics"]
    argocd = ctx.components["argocd"]
    assert isinstance(argocd, ArgoCD) and not argocd.has_server
    names = [s.name for s in all_specs(ctx) if s.name.startswith("argocd")]
    assert "argocd-server" not in names and "argocd-application-controller" in names
    assert "argocd-server" not in argocd.endpoints()
    with pytest.raises(HarnessError, match="harness down && harness up"):
        _ = argocd.server_address


def test_unscaled_the_apiserver_is_scraped_at_prometheus_default_like_the_rest(
        tmp_path: Path, cache_dir: Path) -> None:
    ctx = build(tmp_path, cache_dir, "dev", PROFILE_COMPONENTS["dev"], time_scale=1)
    write_all_files(ctx)
    _text, config = prometheus_config(ctx)
    api = {job["job_name"]: job for job in config["scrape_configs"]}["kube-apiserver"]
    assert config["global"]["scrape_interval"] == api["scrape_interval"] == "15s"
    assert api["scrape_timeout"] == "10s"
