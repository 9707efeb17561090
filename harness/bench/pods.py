"""`harness bench --only pods`: the pods backend (the platform as real Pods on a real
kubelet node joined to the local control plane) beside the local backend (the same
platform as processes), one quantity at a time:

- the platform's start (`up`, images already built);
- the RSS of everything the environment runs, once settled;
- a Vault write -> force-sync -> the Kubernetes Secret holds the new value;
- on the HA profiles (staging, prod), the active Vault lost -> Vault serves again.

Figures are reported, never asserted. A measurement that fails is reported as not
measured, with why; only a platform that does not come up ends the run. Every
environment started here is stopped in `finally`.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.bench.figures import Comparison, Figure, PodsBench
from harness.bench.node import rss_mib
from harness.bench.runners import (
    SETTLE_SECONDS,
    Log,
    resilience_figures,
    rotation_latency,
    settled_rss_mib,
    synced_external_secret,
    temporary_environment,
)
from harness.runtime import node_host
from harness.runtime.redact import redact
from harness.runtime.registry import processes_of_run
from harness.settings import Settings
from harness.toolchain import Toolchain
from harness.wait import eventually

if TYPE_CHECKING:
    from collections.abc import Callable

    from harness.backends.local.environment import LocalEnvironment
    from harness.backends.pods.environment import PodsEnvironment

WRITE_SAMPLES_MIN = 5  # write -> Secret: p50/p95 of fewer would say little
FAILOVER_SAMPLES_MAX = 3  # each one waits for the replaced Pod (or node) to rejoin
NAMESPACE = "heracles-bench"
DEV_FAILOVER = "dev: one dev-mode Pod"


@dataclass(frozen=True)
class Side:
    """The four figures of one backend, in the order of the comparison."""

    up: Figure
    rss: Figure
    write: Figure
    failover: Figure


def _not_measured(name: str, unit: str, why: str) -> Figure:
    return Figure(name, unit, (), note=why)


def _measure(name: str, unit: str, log: Log, run: Callable[[], Figure]) -> Figure:
    """`run()`'s figure; when it fails, the figure not measured, with why (one line,
    redacted): one broken measurement must not lose the others'."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported as the figure's note, never fatal
        why = redact(f"failed: {type(exc).__name__}: {exc}").splitlines()[0][:240]
        log(f"  {name}: {why}")
        return _not_measured(name, unit, why)


# ---- the pods backend ----------------------------------------------------------------------
def pods_rss_mib(env: PodsEnvironment) -> float:
    """RSS of everything the pods environment runs, each process counted once: the local
    control plane's and the node's processes with their children (containerd's shims),
    everything in the node's cgroups (the platform's containers), and the pods backend's
    own helpers (the alert receiver)."""
    local = env.local().attach()
    run_id = local.record.run_id
    pids = set(node_host.cgroup_pids(run_id))
    pids.update(p.pid for p in processes_of_run(run_id, env.registry.root))
    pids.update(p.pid for p in processes_of_run(env.run_id, env.registry.root))
    return rss_mib(pids, [p.pid for comp in local.components.values()
                          for p in comp.processes() if p.pid is not None])


def write_to_secret(env: PodsEnvironment, samples: int, log: Log) -> Figure:
    """`samples` times: a new value written to Vault (kv put), the ExternalSecret
    force-synced (the runbook's annotation), seconds until the Secret holds it. Through
    a test SecretStore of its own namespace, as the suites' `vault_store` does."""
    first = f"bench-{secrets.token_hex(8)}"
    eso, vault, key = synced_external_secret(env, NAMESPACE, "write", first, timeout=180)
    out: list[float] = []
    for i in range(samples):
        value = f"bench-{secrets.token_hex(8)}"
        t0 = time.monotonic()
        vault.kv_put(key, password=value)
        eso.force_sync(NAMESPACE, "write")
        eso.wait_value(NAMESPACE, "write", "password", value, timeout=60)
        out.append(time.monotonic() - t0)
        log(f"  write -> Secret {i + 1}/{samples}: {out[-1]:.2f}s")
    return Figure("write_to_secret_seconds", "s", out,
                  note="pods: kv put -> force-sync -> Secret (ESO Pod, Vault through its "
                       "Service)")


def vault_pod_kill_failover(env: PodsEnvironment, samples: int, log: Log) -> Figure:
    """`samples` times: the active Vault Pod deleted (grace 0), seconds until another
    node is the leader (sys/leader names neither the deleted Pod nor its IP) and a kv put
    and the read of it back succeed through the harness's Vault address (the
    `vault-active` Service); then the StatefulSet's replacement unsealed and Ready, so
    the next sample (and teardown) starts from a whole cluster.

    The leader check matters: a Pod deleted with grace 0 is gone from the API at once,
    but its container (and kube-proxy's route to it) outlives that for a moment, and a
    write it still answers says nothing about failover."""
    faults = env.faults(env.kube_client())
    vault = env.vault
    key = f"{NAMESPACE}/failover"
    out: list[float] = []
    for i in range(samples):
        active = faults.wait_vault_active(timeout=180)
        pod = next(p for p in faults.vault_pods() if p.metadata.name == active)
        gone = (f"//{active}.", f"//{pod.status.pod_ip}:")  # cluster address, API address
        value = f"bench-{secrets.token_hex(8)}"

        def served(value: str = value, gone: tuple[str, str] = gone) -> bool:
            leader = vault.client().sys.read_leader_status()
            addresses = f"{leader.get('leader_address')} {leader.get('leader_cluster_address')}"
            if not leader.get("leader_address") or any(g in addresses for g in gone):
                raise AssertionError(f"no new leader yet ({addresses})")
            vault.kv_put(key, password=value)
            return (vault.kv_get(key) or {}).get("password") == value

        uid = faults.delete_vault_pod(active)
        t0 = time.monotonic()
        eventually(served, timeout=300, interval=0.2,
                   description="a new Vault leader serves a write and its read after the "
                               "active Pod was deleted")
        out.append(time.monotonic() - t0)
        log(f"  failover {i + 1}/{samples} ({active} deleted): {out[-1]:.2f}s; waiting "
            "for its replacement (unseal, Ready)")
        faults.wait_vault_pod_replaced(active, uid, timeout=300)
    return Figure("vault_pod_kill_failover_seconds", "s", out,
                  note="pods: active Vault Pod deleted (grace 0) -> a new leader serves kv "
                       "put + get through vault-active (replacement unsealed after each)")


def pods_side(settings: Settings, toolchain: Toolchain, writes: int, failovers: int,
              log: Log) -> tuple[Side, dict[str, float]]:
    """The pods backend's figures and the seconds of each step of its `up`, in a
    throw-away state directory short enough for the kubelet's unix sockets."""
    from harness.backends.pods.environment import PodsEnvironment

    state = Path(tempfile.mkdtemp(prefix="hb-", dir="/tmp"))
    env = PodsEnvironment(settings.with_(state_dir=state), toolchain)
    t0 = time.monotonic()
    steps: list[tuple[str, float]] = [("render: helm lint + template, the plan", t0)]

    def progress(step: str) -> None:
        steps.append((step, time.monotonic()))
        log(f"pods up +{time.monotonic() - t0:.1f}s: {step}")

    ok = False
    try:
        log(f"pods backend: up (profile {env.profile}, state {state})")
        env.up(progress)
        up_s = time.monotonic() - t0
        log(f"pods backend: up in {up_s:.1f}s")
        ends = [t for _, t in steps[1:]] + [t0 + up_s]
        breakdown = {name: end - start for (name, start), end in zip(steps, ends,
                                                                     strict=True)}
        releases = [c.release for c in env.charts]
        up = Figure("pods_up_seconds", "s", [up_s],
                    note="pods: control plane + real node + Git, images imported, CRDs, "
                         f"charts ({', '.join(releases)}), Vault init/unseal"
                         f"{', Argo CD login' if 'argocd' in releases else ''} (1 run)")
        log("pods backend: RSS, settled")
        rss = _measure("pods_rss_mib", "MiB", log, lambda: _settled(env))
        log(f"pods backend: write -> force-sync -> Secret, {writes} times")
        write = _measure("write_to_secret_seconds", "s", log,
                         lambda: write_to_secret(env, writes, log))
        if env.dev_mode:
            failover = _not_measured("vault_pod_kill_failover_seconds", "s", DEV_FAILOVER)
        else:
            log(f"pods backend: active Vault Pod deleted, {failovers} times")
            failover = _measure("vault_pod_kill_failover_seconds", "s", log,
                                lambda: vault_pod_kill_failover(env, failovers, log))
        ok = True
    finally:
        log("pods backend: down")
        env.down()
        if ok:
            shutil.rmtree(state, ignore_errors=True)
        else:
            log(f"pods backend: state kept for inspection in {state}")
    return Side(up=up, rss=rss, write=write, failover=failover), breakdown


def _settled(env: PodsEnvironment) -> Figure:
    time.sleep(SETTLE_SECONDS)  # as settled_rss_mib does for the local environment
    return Figure("pods_rss_mib", "MiB", [pods_rss_mib(env)],
                  note="pods: control plane, node (containerd, kubelet, shims) and every "
                       "container of its cgroups, once settled")


# ---- the local backend ---------------------------------------------------------------------
def local_side(settings: Settings, toolchain: Toolchain, writes: int, failovers: int,
               log: Log) -> Side:
    """The same quantities on the local backend (the profile's components as processes),
    measured by bench's own runners."""
    log(f"local backend: up (profile {settings.profile})")
    with temporary_environment(settings, profile=settings.profile,
                               toolchain=toolchain) as env:
        up = Figure("local_up_seconds", "s", [env.timings["total"]],
                    note="local: the profile's processes (control plane on KWOK nodes, "
                         "Vault, ESO, Prometheus, Alertmanager, Toxiproxy, Git, Argo CD); "
                         "no real node, nothing imported (1 run)")
        log(f"local backend: up in {env.timings['total']:.1f}s; RSS, settled")
        rss = _measure("local_rss_mib", "MiB", log, lambda: Figure(
            "local_rss_mib", "MiB", [settled_rss_mib(env)],
            note="local: every process of the environment (no node, no containers)"))
        log(f"local backend: write -> force-sync -> Secret, {writes} times")
        write = _measure("rotation_force_sync_latency", "s", log,
                         lambda: _relabel(rotation_latency(env, writes, log),
                                          "local: kv put -> force-sync -> Secret (ESO "
                                          "and Vault as processes)"))
        failover = _local_failover(env, failovers, log)
    return Side(up=up, rss=rss, write=write, failover=failover)


def _local_failover(env: LocalEnvironment, failovers: int, log: Log) -> Figure:
    if not env.vault.ha:
        return _not_measured("vault_leader_loss_rto", "s", "dev: one dev-mode process")
    log(f"local backend: Vault drills (vault-leader-loss {failovers} times, then "
        "vault-restore)")

    def drill() -> Figure:
        rto = resilience_figures(env, failovers, log).vault_leader_loss_rto
        return _relabel(rto, "local: kill -9 of the active Vault process -> the Vault "
                             "Service serves reads again (vault-leader-loss drill RTO); "
                             "a process killed, not a Pod deleted")

    return _measure("vault_leader_loss_rto", "s", log, drill)


def _relabel(fig: Figure, note: str) -> Figure:
    """A runner's figure with the note that says what it is beside the pods figure."""
    return dataclasses.replace(fig, note=note)


# ---- both ----------------------------------------------------------------------------------
def pods_bench(settings: Settings, toolchain: Toolchain, repeat: int, log: Log) -> PodsBench:
    """The pods backend, then the local backend, one environment at a time (no figure
    measured next to the other's load)."""
    writes = max(repeat, WRITE_SAMPLES_MIN)
    failovers = max(1, min(repeat, FAILOVER_SAMPLES_MAX))
    pods, steps = pods_side(settings, toolchain, writes, failovers, log)
    local = local_side(settings, toolchain, writes, failovers, log)
    return PodsBench(comparisons=(
        Comparison("pods_up_seconds", "s", pods.up, local.up),
        Comparison("pods_rss_mib", "MiB", pods.rss, local.rss),
        Comparison("write_to_secret_seconds", "s", pods.write, local.write),
        Comparison("vault_pod_kill_failover_seconds", "s", pods.failover, local.failover),
    ), up_steps=steps)
