"""What the spec's runbook needs beyond kubectl on the local backend, where the platform
is processes rather than Pods: `harness logs` (≈ `kubectl logs [-f]`), `harness restart`
(≈ `kubectl rollout restart`), `harness eso grant` (ESO's Vault policy extended to a new
path) and the shell exports that put `vault` and `argocd` on PATH (`eval "$(harness
env)"`).

docs/runbook-local.md translates every runbook command.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.common import err, settings_from
from harness.errors import HarnessError
from harness.runtime.redact import LineRedactor
from harness.vault_config.eso_grants import (
    ESO_POLICY,
    kv_policy_path,
    record_grants,
    with_read_grants,
)

if TYPE_CHECKING:
    from harness.backends.base import Environment
    from harness.backends.local.environment import LocalEnvironment
    from harness.clients.vault import VaultAdmin
    from harness.settings import Settings

# ---- shell exports ------------------------------------------------------------------------


def local_exports(platform: LocalEnvironment) -> str:
    """The local environment's `export` lines plus what the runbook types by name:
    `vault` (a symlink to the environment's Vault CLI — OpenBao's `bao` answers to
    either name) and `argocd` in `<state>/bin`, first on PATH, and the Argo CD API
    server (ARGOCD_SERVER, plaintext on 127.0.0.1; `argocd login` keeps its context in
    the state directory, not in ~/.config). No secret is printed: VAULT_TOKEN is still
    read from its 0600 file by the shell."""
    lines = [platform.env_exports()]
    bin_dir = platform.state.root / "bin"
    links: dict[str, Path] = {}
    if "vault" in platform.components:
        links["vault"] = Path(platform.vault.server_binary())
    from harness.backends.local.components.argocd import ArgoCD

    if isinstance(argocd := platform.components.get("argocd"), ArgoCD) and argocd.has_server:
        links["argocd"] = platform.toolchain.binary("argocd", "argocd")
        lines += [f"export ARGOCD_SERVER={argocd.server_address.removeprefix('http://')}",
                  'export ARGOCD_OPTS="--plaintext"',
                  f"export ARGOCD_CONFIG_DIR={platform.state.root / 'argocd' / 'cli'}"]
    for name, target in links.items():
        _symlink(bin_dir / name, target)
    if links:
        lines.append(f"export PATH={bin_dir}:$PATH")
    return "\n".join(lines)


def _symlink(link: Path, target: Path) -> None:
    """`link` -> `target`, replaced atomically when it points elsewhere."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


# ---- harness logs -------------------------------------------------------------------------

# kubectl's resource prefixes: `deployment/external-secrets` names what the process is.
KIND_PREFIXES = ("deployment/", "deploy/", "deployments/", "statefulset/", "sts/",
                 "statefulsets/", "pod/", "po/", "pods/", "daemonset/", "ds/", "service/",
                 "svc/", "replicaset/", "rs/", "job/")
# In-cluster names the runbook uses -> the local process or component playing them.
ALIASES = {"vault-0": "vault",
           "external-secrets-controller": "external-secrets",
           "prometheus-server": "prometheus", "prometheus-alertmanager": "alertmanager",
           "etcd-0": "etcd", "apiserver": "kube-apiserver"}
# Workloads with replicas: `rollout restart deployment/external-secrets` means every
# replica (`kubectl logs deployment/...` reads one: the first).
WORKLOADS = {"external-secrets": "eso", "vault": "vault"}


@dataclass(frozen=True)
class LogSources:
    """Every log of a local environment by the names `harness logs` accepts."""

    state_dir: Path
    by_process: dict[str, Path]
    by_component: dict[str, list[str]]  # component -> its process names
    extra: dict[str, Path]  # logs no process writes to itself (Vault's audit log)

    def names(self) -> list[str]:
        return sorted({*self.by_process, *self.by_component, *self.extra})

    def resolve(self, name: str, workload: bool = False) -> dict[str, Path]:
        """The log files a name means: a process, a component (all its processes), an
        extra log, or a kubectl-style name (`deployment/external-secrets`, `vault-0`).
        With `workload`, a Deployment/StatefulSet name means all its replicas."""
        bare = name
        for prefix in KIND_PREFIXES:
            if bare.startswith(prefix):
                bare = bare[len(prefix):]
                break
        for candidate in (WORKLOADS.get(bare) if workload else None, bare,
                          ALIASES.get(bare)):
            if candidate is None:
                continue
            if candidate in self.by_process:
                return {candidate: self.by_process[candidate]}
            if candidate in self.by_component:
                return {p: self.by_process[p] for p in self.by_component[candidate]}
            if candidate in self.extra:
                return {candidate: self.extra[candidate]}
        raise click.BadParameter(
            f"no log named {name!r} in the environment of {self.state_dir}; choose one "
            f"of: {', '.join(self.names())}", param_hint="'COMPONENT'")


def log_sources(settings: Settings) -> LogSources:
    """The logs of the environment recorded in the state directory — running or
    stopped: a stopped one's logs are what says why. Loading it teaches the redactor the
    environment's secrets (tokens, seeded values) before any line is printed."""
    from harness.backends.local.environment import LocalEnvironment
    from harness.backends.local.record import EnvironmentRecord
    from harness.vault_config.seed import parse_seed

    env = LocalEnvironment(settings)
    record = EnvironmentRecord.load(env.state)
    if record is None:
        raise HarnessError(f"no environment in {env.state.root}; run `harness up` (or "
                           "check --state-dir)")
    # What `status` does: adopt the record, build its components (no process touched).
    env._adopt(record)
    env._build(record.components)
    seed = env.settings.fixtures_dir / "vault" / "seed.txt"
    if seed.exists():
        parse_seed(seed)  # registers the seeded values with the redactor
    by_process: dict[str, Path] = {}
    by_component: dict[str, list[str]] = {}
    for cname, comp in env.components.items():
        logs = comp.logs()
        by_process.update(logs)
        by_component[cname] = list(logs)
    known = set(by_process.values())
    logs_dir = env.state.root / "logs"
    extra = {p.stem: p for p in sorted(logs_dir.glob("*.log")) if p not in known} \
        if logs_dir.is_dir() else {}
    return LogSources(env.state.root, by_process, by_component, extra)


def tail_lines(path: Path, lines: int, block: int = 64 * 1024) -> tuple[list[str], int]:
    """The last `lines` lines of a file (read backwards, so a large log costs only its
    tail) and the offset its end had: where following starts."""
    try:
        with path.open("rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            pos, data = end, b""
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return [], 0
    text = data.decode(errors="replace").splitlines()
    return (text[-lines:] if lines > 0 else []), end


class Follower:
    """New complete lines of one file, from an offset on: a truncated file (a log
    rotated by truncation) is read again from its start, a replaced one is reopened."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path, self.offset, self.partial = path, offset, b""
        self.inode = path.stat().st_ino if path.exists() else None

    def poll(self) -> list[str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if st.st_ino != self.inode or st.st_size < self.offset:
            self.inode, self.offset, self.partial = st.st_ino, 0, b""
        if st.st_size == self.offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read(st.st_size - self.offset)
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace") for line in complete]


def follow(files: dict[str, Path], offsets: dict[str, int], prefix: bool,
           interval: float = 0.25,
           redactors: dict[str, LineRedactor] | None = None) -> Iterator[str]:
    """Lines appended to the files from their offsets on, redacted (each file's own
    LineRedactor: a key block spans lines of one file), until the caller stops (the
    command stops at Ctrl-C)."""
    redactors = redactors if redactors is not None else {}
    followers = {name: Follower(path, offsets.get(name, 0)) for name, path in files.items()}
    while True:
        for name, fol in followers.items():
            mask = redactors.setdefault(name, LineRedactor())
            for line in fol.poll():
                yield f"[{name}] {mask(line)}" if prefix else mask(line)
        time.sleep(interval)


def _complete_sources(ctx: click.Context, _param: click.Parameter,
                      incomplete: str) -> list[str]:
    """Tab completion: the names the environment of --state-dir has (none when there is
    no environment: completion must never fail)."""
    from harness.settings import Settings

    try:  # while completing, no command callback has run: read --state-dir off the line
        state = ctx.meta.get("heracles.sub_state_dir") or \
            ctx.find_root().params.get("state_dir")
        names = log_sources(Settings().with_(state_dir=state)).names()
    except Exception:  # noqa: BLE001 - no environment, bad settings: nothing to offer
        return []
    return [n for n in names if n.startswith(incomplete)]


@click.command("logs")
@click.argument("component", shell_complete=_complete_sources)
@click.option("-f", "--follow", "follow_", is_flag=True,
              help="Keep printing new lines until Ctrl-C (as `kubectl logs -f`).")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=100, show_default=True,
              help="How many of the last lines to print first (per process).")
@click.pass_context
def logs(ctx: click.Context, component: str, follow_: bool, lines: int) -> None:
    """Tail or follow logs, redacted: `kubectl logs [-f]` for the local platform.

    COMPONENT is a component (eso, argocd, vault, ... — all its processes), a process
    (external-secrets, argocd-server, kube-apiserver, vault-0, ...), Vault's audit log
    (vault-audit), or a kubectl-style name (deployment/external-secrets ≈ `kubectl logs
    -n external-secrets deployment/external-secrets`). A stopped environment's logs
    too."""
    sources = log_sources(settings_from(ctx))
    files = sources.resolve(component)
    several = len(files) > 1
    offsets: dict[str, int] = {}
    redactors = {name: LineRedactor() for name in files}
    for name, path in files.items():
        tail, offsets[name] = tail_lines(path, lines)
        if several and not follow_:
            click.echo(f"==> {name} ({path}) <==")
        for line in tail:
            masked = redactors[name](line)
            click.echo(f"[{name}] {masked}" if several and follow_ else masked)
    if not follow_:
        return
    try:
        for line in follow(files, offsets, prefix=several, redactors=redactors):
            click.echo(line)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a follow ends: exit 0, no traceback


@click.command("restart")
@click.argument("component", shell_complete=_complete_sources)
@click.pass_context
def restart(ctx: click.Context, component: str) -> None:
    """Restart processes gracefully: `kubectl rollout restart` for the local platform.

    One after another, each awaited until ready (same data and ports). COMPONENT as
    `harness logs` takes it (deployment/external-secrets: every ESO replica;
    argocd-server: that one; vault-1: one node). The dev Vault is unsealed again at once;
    a staging/prod node comes back sealed, as a restarted Vault Pod does (`vault operator
    unseal`), so restarting `vault` there seals the whole cluster."""
    from harness.backends.local.environment import LocalEnvironment

    settings = settings_from(ctx)
    names = list(log_sources(settings).resolve(component, workload=True))
    platform = LocalEnvironment(settings).attach()
    for name in names:
        before = platform.process(name).pid
        proc = platform.restart_process(name)
        err.print(f"restarted {name} (pid {before} -> {proc.pid}), ready", highlight=False,
                  markup=False)


# ---- harness eso grant --------------------------------------------------------------------

def eso_policy_text(vault: VaultAdmin, settings: Settings) -> str:
    """ESO's policy as Vault holds it now (grants made earlier included); the fixture's
    text when Vault has none yet."""
    import hvac

    try:
        found = vault.client().sys.read_policy(name=ESO_POLICY) or {}
    except hvac.exceptions.InvalidPath:
        found = {}
    rules = (found.get("data") or found).get("rules")
    if rules:
        return str(rules)
    return (settings.fixtures_dir / "vault" / "policies" / f"{ESO_POLICY}.hcl").read_text()


def grant_eso_read(platform: Environment, paths: list[str], mount: str = "secret",
                   record: bool = True) -> tuple[list[str], list[str]]:
    """Extend ESO's Vault policy with read on each KV path: what a new Vault path needs
    before an ExternalSecret through `vault-cluster-backend` can sync it (without it, the
    first sync fails with 403 permission denied). Returns (added, already granted)."""
    wanted = [kv_policy_path(p, mount) for p in paths]
    vault = platform.vault
    hcl, added = with_read_grants(eso_policy_text(vault, platform.settings), wanted)
    if added:
        vault.write_policy(ESO_POLICY, hcl)
    if record:
        record_grants(platform.settings.state_dir, wanted)
    return added, [p for p in wanted if p not in added]


@click.group("eso")
def eso_group() -> None:
    """External Secrets Operator: what the platform team does for a new secret."""


@eso_group.command("grant")
@click.argument("paths", nargs=-1, required=True)
@click.option("--mount", default="secret", show_default=True, help="The KV v2 mount.")
@click.option("--backend", type=click.Choice(["local", "pods", "kind"]), default="local",
              show_default=True, help="The environment `harness up --backend` started.")
@click.pass_context
def eso_grant(ctx: click.Context, paths: tuple[str, ...], mount: str, backend: str) -> None:
    """Let ESO read new Vault paths: adds `path "secret/data/PATH" { capabilities =
    ["read"] }` to its policy `external-secrets` (the role of the ClusterSecretStore
    `vault-cluster-backend`). PATH as `vault kv put` takes it (secret/payments/api) or
    as a remoteRef key (payments/api); globs allowed (payments/*). Idempotent; recorded
    in the state directory, so `harness up` restores them after ESO is installed anew."""
    from harness.backends.local.environment import LocalEnvironment

    platform: Environment
    if backend in ("pods", "kind"):
        from harness.cli.common import charts_env_class

        platform = charts_env_class(backend).from_record(settings_from(ctx)).attach()
    else:
        platform = LocalEnvironment(settings_from(ctx)).attach()
    added, present = grant_eso_read(platform, list(paths), mount)
    for p in added:
        err.print(f"granted: ESO (policy {ESO_POLICY}) may read {p}", highlight=False,
                  markup=False)
    for p in present:
        err.print(f"already granted: {p}", highlight=False, markup=False)
