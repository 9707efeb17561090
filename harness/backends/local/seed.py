"""The cluster seed: an etcd snapshot of a control plane that already holds the CRDs of
ESO and Argo CD, restored into a fresh environment's empty etcd before it starts.

Why: applying those 23 CRDs (1.2 MB of schemas) costs kube-apiserver about 6 s of CPU —
measured here: 3 s to send, 5.2-6.7 s until all are Established, the same whether sent
one by one or four at a time — and on two cores that is the longest step of a fresh
`harness up`. An apiserver started on etcd data that holds them serves them 0.3 s after
it is ready.

What the seed holds is exactly what a fresh start would write: the apiserver's own
bootstrap objects (namespaces, RBAC, priority classes, flow control) and the CRDs as the
components apply them, digest annotation included (`manifests.ensure_crds`), so their
install finds them current and moves on. It is built once per key — Kubernetes and etcd
versions, the apiserver's service range, every CRD file's content — with the Kube
component's own apiserver flags, then never changed. Removed from it before the
snapshot: the seed apiserver's identity Lease, its events, and the
`extension-apiserver-authentication` ConfigMap naming the seed's throw-away CA (each
apiserver writes its own at start).

Not seeded: an environment with a real node (its apiserver runs other flags), a state
directory whose etcd has data (a restart keeps its own), `HERACLES_CLUSTER_SEED=0`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock

from harness.backends.local.components.base import Component
from harness.backends.local.components.etcd import Etcd
from harness.backends.local.components.kube import SERVICE_CIDR, Kube
from harness.clients import manifests
from harness.errors import HarnessError
from harness.runtime.state import StateDir
from harness.settings import Settings
from harness.toolchain import Toolchain


class SeedTarget(Protocol):
    """What of an environment the seed reads (the local backend's LocalEnvironment)."""

    components: dict[str, Component]
    state: StateDir
    settings: Settings
    toolchain: Toolchain

SEED_FORMAT = "1"  # bump when what a seed holds changes
# etcd keys no new environment may inherit (see the module docstring).
FORGET_PREFIXES = ("/registry/leases/kube-system/apiserver-", "/registry/events/",
                   "/registry/configmaps/kube-system/extension-apiserver-authentication")


def crd_files(components: dict[str, Component]) -> list[Path]:
    return [f for comp in components.values() for f in comp.crd_files()]


def seed_key(toolchain: Toolchain, files: list[Path]) -> str:
    h = hashlib.sha256()
    for part in (SEED_FORMAT, toolchain.spec("kubernetes").version,
                 toolchain.spec("etcd").version, SERVICE_CIDR):
        h.update(part.encode() + b"\0")
    for f in sorted(files, key=str):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def seed_path(settings: Settings, key: str) -> Path:
    return settings.cache_dir / "cluster-seeds" / f"crds-{key}.db"


def wanted(env: SeedTarget) -> list[Path]:
    """The CRD files a seed would hold for this environment, or [] when it takes none:
    no Kubernetes, a real node, a disabled seed, or etcd data already there."""
    comps = env.components
    if not env.settings.cluster_seed or "node" in comps or not {"kube", "etcd"} <= set(comps):
        return []
    data = env.state.data("etcd")
    if data.exists() and any(data.iterdir()):
        return []
    return crd_files(comps)


def seed_etcd(env: SeedTarget, events: Callable[[str], None]) -> bool:
    """Restore the seed into the fresh etcd of `env` (building it first if this machine
    has none for that key). Returns whether etcd was seeded."""
    files = wanted(env)
    if not files:
        return False
    key = seed_key(env.toolchain, files)
    path = seed_path(env.settings, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):  # two sessions build it once
        if not path.exists():
            events(f"cluster seed: building it once for this machine ({len(files)} CRD "
                   f"files, key {key}); later starts restore it")
            try:
                build_seed(type(env), env.settings, env.toolchain, files, path)
            except HarnessError as exc:  # the start goes on as it would without a seed
                events(f"cluster seed: not built ({exc}); starting without it")
                return False
    etcd = env.components["etcd"]
    assert isinstance(etcd, Etcd)
    etcd.restore_data(path)
    events(f"etcd: seeded from {path.name} (CRDs already applied)")
    return True


def build_seed(environment: Callable[[Settings, Toolchain], Any], settings: Settings,
               toolchain: Toolchain, files: list[Path], path: Path) -> None:
    """Start etcd and kube-apiserver (the Kube component's flags, nothing else) in a
    throw-away `environment` (the local backend's class), apply the CRDs, stop the
    apiserver, forget what belongs to that apiserver alone, snapshot etcd to `path`
    (written whole, then renamed)."""
    from harness.clients.kube import dynamic_client

    with tempfile.TemporaryDirectory(prefix="heracles-seed-") as tmp:
        env = environment(settings.with_(state_dir=Path(tmp) / "state", profile="dev",
                                         components=("etcd",)), toolchain)
        env.up(["etcd"], mode="session")
        try:
            kube = env.add_unstarted(Kube)
            kube.write_files()
            apiserver = kube.process("kube-apiserver")
            apiserver.start()  # stopped below; `down` kills it too if we die first
            try:
                dyn = dynamic_client(kube.api_client())
                manifests.ensure_crds(manifests.load_cached(files, toolchain.parsed_dir), dyn)
            finally:
                apiserver.stop()
            etcd = env.etcd
            for prefix in FORGET_PREFIXES:
                etcd.etcdctl("del", "--prefix", prefix)
            staged = path.with_suffix(".tmp")
            etcd.snapshot_save(staged)
            shutil.move(staged, path)
        finally:
            env.down()
