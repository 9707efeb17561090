"""`harness bench`: the performance figures, each beside the floor it should be read
against — etcd + kube-apiserver alone, started the way controller-runtime's envtest
starts them (no controller-manager, no scheduler, no KWOK, ServiceAccount admission off).

Figures are measured, never asserted: these machines are shared and noisy. Targets from
the issues are reported next to each figure with whether this run met them.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.platform import Platform
from harness.runtime.pki import PKI
from harness.runtime.ports import PortRegistry
from harness.runtime.probes import http_ok
from harness.runtime.process import ManagedProcess, ProcessSpec
from harness.runtime.registry import RunRegistry, new_run_id
from harness.settings import Settings
from harness.toolchain import Toolchain

Log = Callable[[str], None]
MiB = 1024 * 1024
BENCH_TIME_SCALE = 60.0  # alert figures: `for: 5m` runs as 5 s


def envtest_floor(settings: Settings, toolchain: Toolchain, workdir: Path) -> dict[str, float]:
    """Start etcd + kube-apiserver with envtest's flags; seconds to /readyz and RSS."""
    registry = RunRegistry(settings.registry_dir)
    run_id = new_run_id()
    registry.register(run_id, workdir, "session")
    ports = PortRegistry(settings.registry_dir).allocate(run_id, 3)
    pki = PKI(workdir / "pki")
    serving = pki.issue("apiserver", "127.0.0.1", "localhost")
    sa = pki.service_account_keys()
    etcd_url = f"http://127.0.0.1:{ports[0]}"
    etcd = ProcessSpec(
        name="floor-etcd", log_path=workdir / "etcd.log", data_dir=workdir / "etcd",
        probe=http_ok(f"{etcd_url}/health", expect=b'"true"'),
        argv=[str(toolchain.binary("etcd", "etcd")), f"--data-dir={workdir / 'etcd'}",
              f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
              f"--listen-peer-urls=http://127.0.0.1:{ports[1]}", "--unsafe-no-fsync",
              f"--initial-advertise-peer-urls=http://127.0.0.1:{ports[1]}",
              f"--initial-cluster=default=http://127.0.0.1:{ports[1]}"])
    api_url = f"https://127.0.0.1:{ports[2]}"
    apiserver = ProcessSpec(
        name="floor-apiserver", log_path=workdir / "apiserver.log",
        probe=http_ok(f"{api_url}/readyz", ca=pki.ca_cert),
        argv=[str(toolchain.binary("kubernetes", "kube-apiserver")),
              "--advertise-address=127.0.0.1", "--bind-address=127.0.0.1",
              f"--secure-port={ports[2]}", f"--etcd-servers={etcd_url}",
              f"--cert-dir={workdir / 'certs'}", f"--tls-cert-file={serving.cert}",
              f"--tls-private-key-file={serving.key}", f"--client-ca-file={pki.ca_cert}",
              "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
              "--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC",
              "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
              f"--service-account-key-file={sa.cert}",
              f"--service-account-signing-key-file={sa.key}"])
    procs = [ManagedProcess(s, run_id, registry.root) for s in (etcd, apiserver)]
    try:
        t0 = time.monotonic()
        for p in procs:
            p.start()
        start = time.monotonic() - t0
        time.sleep(2)  # let both settle, as the full environment does before its RSS
        rss = sum(p.rss_bytes() for p in procs)
    finally:
        for p in reversed(procs):
            p.stop(grace=5)
        registry.forget(run_id)
    return {"start_s": start, "rss_mib": rss / MiB}


def build_times(toolchain: Toolchain) -> dict[str, float | None]:
    return {s.name: s.build_seconds for s in toolchain.status(deep=False)
            if s.source != "debian"}


def rotation_latency(plat: Platform, rotations: int, log: Log) -> list[float]:
    """Vault write -> force-sync -> Secret updated, seconds, `rotations` times."""
    from kubernetes import client

    from harness.kubeclient import KubeClient
    from harness.secrets_sync import ExternalSecrets, make_test_store

    kube = KubeClient(plat.kubeconfig, str(plat.toolchain.binary("kubernetes", "kubectl")))
    eso = ExternalSecrets(plat, kube)
    vault = plat.component("vault")
    ns = "heracles-bench"
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    store = make_test_store(vault, eso, ns)
    key = f"{store['prefix']}/rotation"
    vault.kv_put(key, password="r0")  # type: ignore[attr-defined]
    eso.apply_object({
        "apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
        "metadata": {"name": "rotation"},
        "spec": {"refreshInterval": "1h", "target": {"name": "rotation"},
                 "secretStoreRef": {"name": store["store"], "kind": "SecretStore"},
                 "data": [{"secretKey": "password",
                           "remoteRef": {"key": key, "property": "password"}}]}}, ns)
    eso.wait_value(ns, "rotation", "password", "r0", timeout=60)
    out = []
    for i in range(1, rotations + 1):
        t0 = time.monotonic()
        vault.kv_put(key, password=f"r{i}")  # type: ignore[attr-defined]
        eso.force_sync(ns, "rotation")
        eso.wait_value(ns, "rotation", "password", f"r{i}", timeout=30)
        out.append(time.monotonic() - t0)
    log(f"{rotations} rotations: median {statistics.median(out):.2f}s")
    return out


def alert_timeline(plat: Platform, log: Log) -> dict[str, float]:
    """Pause Vault and time each stage until VaultDown reaches the receiver: the scrape
    that sees it (up == 0), pending, firing in Prometheus, delivered by Alertmanager."""
    from harness.alerts import ReceivedAlerts
    from harness.rules import load_rules, parse_duration

    prom = plat.component("prometheus")
    received = ReceivedAlerts(plat.component("alertmanager"))
    rule = next(r for r in load_rules(prom.rule_sources()) if r.name == "VaultDown")  # type: ignore[attr-defined]
    hold = parse_duration(rule.for_ or "0s") / plat.settings.time_scale
    marks: dict[str, float] = {}
    vault = plat.process("vault")
    t0 = time.monotonic()
    vault.pause()
    try:
        deadline = t0 + hold + 60
        while "delivered" not in marks and time.monotonic() < deadline:
            now = time.monotonic() - t0
            if "up_zero" not in marks and prom.query('up{job="vault"} == 0'):  # type: ignore[attr-defined]
                marks["up_zero"] = now
            states = {a["state"] for a in prom.alerts()  # type: ignore[attr-defined]
                      if a["labels"].get("alertname") == "VaultDown"}
            if "pending" in states and "pending" not in marks:
                marks["pending"] = now
            if "firing" in states and "firing" not in marks:
                marks["firing"] = now
            if any(a["labels"].get("alertname") == "VaultDown" and a["status"] == "firing"
                   for a in received.alerts()):
                marks["delivered"] = now
            time.sleep(0.05)
    finally:
        vault.resume()
    out = {k: round(v, 2) for k, v in marks.items()}
    out["for_scaled"] = round(hold, 2)
    if "delivered" in marks:
        out["overhead"] = round(marks["delivered"] - hold, 2)
    log(f"VaultDown timeline: {out}")
    return out


def resilience_figures(plat: Platform, repeat: int, log: Log) -> dict[str, Any]:
    """Drills on the staging stack: the vault-leader-loss drill `repeat` times (new
    active node after kill -9, ESO sync resumed after it), then one vault-restore."""
    from harness.drills import run_drill

    kills: list[float] = []
    syncs: list[float] = []
    rtos: list[float] = []
    for i in range(repeat):
        log(f"drill vault-leader-loss {i + 1}/{repeat}")
        r = run_drill("vault-leader-loss", plat)
        if r.verdict != "PASS":
            log(f"  FAIL: {'; '.join(r.reasons)}")
            continue
        kills.append(r.measurements["new_active_after_kill"])
        syncs.append(r.measurements["eso_sync_after_failover"])
        rtos.append(r.rto_seconds or 0.0)
    log("drill vault-restore")
    restore = run_drill("vault-restore", plat)

    def stats(values: list[float], goal: float) -> dict[str, Any]:
        if not values:
            return {"median": None, "goal": goal, "met": None}
        med = statistics.median(values)
        return {"median": round(med, 3), "min": round(min(values), 3),
                "max": round(max(values), 3), "goal": goal, "met": med <= goal}

    return {
        "new_active_after_leader_kill": stats(kills, 3.0),
        "eso_sync_resumed_after_failover": stats(syncs, 10.0),
        "vault_leader_loss_rto": stats(rtos, 10.0),
        "vault_restore_rto": {"value": restore.rto_seconds, "goal": 30.0,
                              "verdict": restore.verdict, "rpo": restore.rpo,
                              "met": restore.rto_seconds is not None
                              and restore.rto_seconds <= 30.0},
    }


def gitops_latency(plat: Platform, commits: int, log: Log) -> list[float]:
    """Bootstrap the dev app-of-apps, then `commits` times: commit + push a change to the
    workload on branch dev, trigger a refresh, time until the Application is Synced at
    that commit."""
    import yaml

    from harness.gitops import Applications, Workspace
    from harness.kubeclient import KubeClient
    from harness.secrets_sync import ExternalSecrets

    kube = KubeClient(plat.kubeconfig, str(plat.toolchain.binary("kubernetes", "kubectl")))
    ExternalSecrets(plat, kube).apply(
        plat.settings.fixtures_dir / "gitops" / "argocd" / "dev" / "app-of-apps.yaml")
    apps = Applications(kube)
    apps.wait("workload", timeout=180)
    out = []
    with tempfile.TemporaryDirectory(prefix="heracles-bench-ws-") as tmp:
        ws = Workspace(plat.git.url(), Path(tmp) / "platform")
        for i in range(commits):
            docs = list(yaml.safe_load_all(ws.read("workload/sample-app.yaml")))
            docs[0]["spec"]["template"]["metadata"].setdefault("annotations", {})[
                "bench/round"] = str(i)
            ws.write("workload/sample-app.yaml", yaml.safe_dump_all(docs, sort_keys=False))
            ws.commit(f"bench round {i}")
            t0 = time.monotonic()
            sha = ws.push("dev")
            apps.refresh("workload")
            apps.wait("workload", revision=sha, health=None, timeout=60)
            out.append(time.monotonic() - t0)
            log(f"  commit -> Synced {i + 1}/{commits}: {out[-1]:.2f}s")
    return out


def byo_repo_figures(plat: Platform, log: Log) -> dict[str, float]:
    """Each sample repo: `apply --platform-repo` (scan, kustomize, seed, apply, serve),
    then until every Application it holds is Synced."""
    from harness.gitops import Applications
    from harness.kubeclient import KubeClient
    from harness.platform_repo import apply_repo

    plat.install_crds("prometheus-operator")
    argo = Applications(KubeClient(plat.kubeconfig, plat.kubectl))
    out: dict[str, float] = {}
    for repo in (plat.settings.fixtures_dir / "gitops",
                 plat.settings.fixtures_dir / "samples" / "kustomize-platform"):
        log(f"bring-your-own repo: {repo.name}")
        t0 = time.monotonic()
        report = apply_repo(plat, repo, namespace=f"bench-{repo.name}", env="dev")
        out[f"{repo.name}_apply"] = round(time.monotonic() - t0, 3)
        for name in report["applications"]["expected"]:
            argo.wait(name, sync="Synced", health=None, timeout=180)
        out[f"{repo.name}_to_all_synced"] = round(time.monotonic() - t0, 3)
    return out


def kind_render_seconds(settings: Settings, log: Log) -> float:
    """The kind backend's offline part: four charts linted + templated, the config."""
    from harness.backends.kind import KindPlatform

    log("kind backend: render (helm lint + template of 4 charts)")
    with tempfile.TemporaryDirectory(prefix="heracles-kind-") as tmp:
        t0 = time.monotonic()
        KindPlatform(settings.with_(state_dir=Path(tmp))).render()
        return round(time.monotonic() - t0, 3)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_bench(settings: Settings, log: Log, repeat: int = 3,
              rotations: int = 20) -> dict[str, Any]:
    toolchain = Toolchain(settings.cache_dir)
    starts, attaches, rss, per_component = [], [], [], []
    floors: list[dict[str, float]] = []
    stack_starts: list[float] = []
    stack_rss: list[float] = []
    latencies: list[float] = []
    timeline: dict[str, float] = {}
    obs_start: list[float] = []
    argocd_ready: list[float] = []
    gitops: list[float] = []
    byo: dict[str, float] = {}
    for i in range(repeat):
        with tempfile.TemporaryDirectory(prefix="heracles-bench-") as tmp:
            s = settings.with_(state_dir=Path(tmp) / "state")
            plat = Platform(s, toolchain)
            log(f"run {i + 1}/{repeat}: control plane start")
            plat.up(["kube"], mode="session")
            try:
                starts.append(plat.timings["total"])
                per_component.append({k: v for k, v in plat.timings.items() if k != "total"})
                time.sleep(2)
                rss.append(plat.rss_bytes() / MiB)
                t0 = time.monotonic()
                Platform(s, toolchain).attach()
                attaches.append(time.monotonic() - t0)
            finally:
                plat.down()
        with tempfile.TemporaryDirectory(prefix="heracles-floor-") as tmp:
            log(f"run {i + 1}/{repeat}: envtest floor (etcd + kube-apiserver)")
            floors.append(envtest_floor(settings, toolchain, Path(tmp)))
        with tempfile.TemporaryDirectory(prefix="heracles-bench-") as tmp:
            s = settings.with_(state_dir=Path(tmp) / "state", profile="dev",
                               time_scale=BENCH_TIME_SCALE)
            plat = Platform(s, toolchain)
            log(f"run {i + 1}/{repeat}: dev platform (control plane, Vault, ESO, "
                "Prometheus, Alertmanager, Toxiproxy, Git, Argo CD)")
            plat.up(mode="session")
            try:
                stack_starts.append(plat.timings["total"])
                time.sleep(2)
                stack_rss.append(plat.rss_bytes() / MiB)
                if i == 0 and rotations:
                    latencies = rotation_latency(plat, rotations, log)
                if i == 0:
                    timeline = alert_timeline(plat, log)
                    gitops = gitops_latency(plat, 5, log)
                    byo = byo_repo_figures(plat, log)
                argocd_ready.append(plat.timings.get("argocd", 0.0))
                obs_start.append(sum(plat.timings.get(c, 0.0)
                                     for c in ("prometheus", "alertmanager")))
            finally:
                plat.down()

    staging: dict[str, float] = {}
    resilience: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="heracles-bench-") as tmp:
        s = settings.with_(state_dir=Path(tmp) / "state", profile="staging")
        plat = Platform(s, toolchain)
        log("staging stack (3-node raft Vault with TLS, init + unseal, Service, ESO)")
        plat.up(mode="session")
        try:
            staging = {k: round(v, 3) for k, v in plat.timings.items()}
            time.sleep(2)
            staging["rss_mib"] = round(plat.rss_bytes() / MiB, 1)
            resilience = resilience_figures(plat, repeat, log)
        finally:
            plat.down()

    floor_start = statistics.median(f["start_s"] for f in floors)
    floor_rss = statistics.median(f["rss_mib"] for f in floors)

    def figure(values: list[float], unit: str, floor: float, target: float | None) -> dict:
        med = statistics.median(values)
        return {"median": round(med, 3), "min": round(min(values), 3),
                "max": round(max(values), 3), "unit": unit,
                "floor": round(floor, 3), "ratio_to_floor": round(med / floor, 2),
                "target": target, "met": None if target is None else med <= target}

    return {
        "profile": settings.profile,
        "repeat": repeat,
        "figures": {
            "control_plane_start": figure(starts, "s", floor_start, 5.0),
            "attach_reused_environment": figure(attaches, "s", floor_start, 1.0),
            "total_rss_all_components": figure(rss, "MiB", floor_rss, None),
            "dev_full_platform_start": figure(stack_starts, "s", floor_start, 10.0),
            "dev_full_platform_rss": figure(stack_rss, "MiB", floor_rss, 2048.0),
        },
        "staging_stack_start_s": staging,
        "resilience_s": resilience,
        "alert_vault_down_timeline_s": {**timeline, "goal_overhead": 3.0},
        "argocd_ready_s": {"median": round(statistics.median(argocd_ready), 3)
                           if argocd_ready else None},
        "gitops_commit_to_synced_s": {
            "count": len(gitops),
            "p50": round(percentile(gitops, 0.5), 3) if gitops else None,
            "max": round(max(gitops), 3) if gitops else None, "goal": 5.0},
        "prometheus_alertmanager_start_s": {
            "median": round(statistics.median(obs_start), 3) if obs_start else None,
            "goal": 1.0},
        "rotation_force_sync_latency_s": {
            "count": len(latencies),
            "p50": round(percentile(latencies, 0.5), 3) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
            "goal": {"p50": 1.0, "p95": 2.0},
        },
        "byo_repo_s": byo,
        "kind_render_s": kind_render_seconds(settings, log),
        "floor_envtest": {"start_s": round(floor_start, 3), "rss_mib": round(floor_rss, 1)},
        "start_breakdown_s": {k: round(statistics.median(d[k] for d in per_component), 3)
                              for k in per_component[0]},
        "toolchain_build_seconds": build_times(toolchain),
    }


def render(report: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"harness bench (profile {report['profile']}, "
                        f"median of {report['repeat']})")
    for col in ("figure", "median", "min-max", "floor (envtest)", "ratio", "target"):
        table.add_column(col)
    for name, f in report["figures"].items():
        target = "-" if f["target"] is None else (
            f"≤ {f['target']}{f['unit']} " + ("[green]met[/]" if f["met"] else "[red]missed[/]"))
        table.add_row(name, f"{f['median']}{f['unit']}", f"{f['min']}-{f['max']}",
                      f"{f['floor']}{f['unit']}", f"{f['ratio_to_floor']}x", target)
    stg = report["staging_stack_start_s"]
    table.add_row("staging stack start (1 run)", f"{stg.get('total')}s",
                  f"vault {stg.get('vault')}s", "", "", f"RSS {stg.get('rss_mib')}MiB")
    res = report.get("resilience_s", {})
    for key, label in (("new_active_after_leader_kill", "Vault: new active after kill -9"),
                       ("eso_sync_resumed_after_failover", "ESO sync after failover"),
                       ("vault_leader_loss_rto", "vault-leader-loss RTO")):
        if key in res and res[key]["median"] is not None:
            f = res[key]
            table.add_row(label, f"{f['median']}s", f"{f['min']}-{f['max']}", "", "",
                          f"goal <= {f['goal']}s " + ("[green]met[/]" if f["met"]
                                                      else "[red]missed[/]"))
    if "vault_restore_rto" in res:
        f = res["vault_restore_rto"]
        table.add_row("vault-restore drill RTO (1 run)", f"{f['value']}s", f["verdict"], "",
                      "", f"goal <= {f['goal']}s " + ("[green]met[/]" if f["met"]
                                                      else "[red]missed[/]"))
    tl = report["alert_vault_down_timeline_s"]
    if "overhead" in tl:
        table.add_row("VaultDown fault -> delivered, minus scaled for:",
                      f"{tl['overhead']}s", f"for {tl['for_scaled']}s", "", "", "goal <= 3s")
    argo = report.get("argocd_ready_s", {})
    if argo.get("median") is not None:
        table.add_row("Argo CD ready (in the platform start)", f"{argo['median']}s", "", "",
                      "", "full platform goal <= 10s")
    lat = report.get("gitops_commit_to_synced_s", {})
    if lat.get("count"):
        table.add_row("commit -> Synced (refresh trigger)", f"p50 {lat['p50']}s",
                      f"max {lat['max']}s", "", "", f"goal <= {lat['goal']}s")
    for key, secs in report.get("byo_repo_s", {}).items():
        table.add_row(f"platform repo {key.replace('_', ' ')}", f"{secs}s", "", "", "", "")
    if report.get("kind_render_s") is not None:
        table.add_row("kind backend render (4 charts lint + template)",
                      f"{report['kind_render_s']}s", "", "", "", "")
    obs = report["prometheus_alertmanager_start_s"]
    table.add_row("Prometheus + Alertmanager start", f"{obs['median']}s", "", "", "",
                  "goal <= 1s")
    rot = report["rotation_force_sync_latency_s"]
    if rot["count"]:
        table.add_row("rotation (write -> force-sync -> Secret)", f"p50 {rot['p50']}s",
                      f"p95 {rot['p95']}s", "", "", "goal p50 <= 1s, p95 <= 2s")
    builds = Table(title="toolchain: seconds of the build that produced each cache entry")
    builds.add_column("component")
    builds.add_column("build")
    for comp, secs in report["toolchain_build_seconds"].items():
        builds.add_row(comp, "-" if secs is None else f"{secs}s")
    from rich.console import Group

    return Group(table, builds)
