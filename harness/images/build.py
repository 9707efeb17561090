"""Build the images: stage a root filesystem per layer, let umoci write the OCI layout,
pack it as one archive that containerd (`ctr images import`), `kind load image-archive`
and `docker load` all read.

The archive is the layout docker (>= 25) itself saves: `oci-layout`, `index.json` and
`blobs/`, plus docker's `manifest.json` naming the same blobs. Every input is hashed
(recipe, file contents, tool versions): an archive is rebuilt only when one changes, and
two builds of the same inputs give the same image digest (mtimes, owners and history
timestamps are fixed at the epoch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from filelock import FileLock

from harness.errors import HarnessError
from harness.images.recipes import Recipe, Source, select
from harness.progress import Reporter
from harness.toolchain import Toolchain
from harness.toolchain.cache import sha256_file

EPOCH = "1970-01-01T00:00:00Z"
SCHEMA = 3  # bump when the way images are assembled changes


class ImageError(HarnessError):
    pass


@dataclass
class BuiltImage:
    """One cached archive and what it holds."""

    key: str
    ref: str
    archive: str
    digest: str  # the manifest digest: what containerd shows as the image's digest
    image_id: str  # the config digest: what the kubelet reports as a container's imageID
    size: int
    inputs: str  # hash of everything the image is made of
    build_seconds: float
    action: str = "cached"  # cached | built

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def cached_image(entry: Path, inputs: str | None = None) -> BuiltImage | None:
    """The archive cached in `entry` (its `image.json`), if it exists and matches
    `inputs` (when given); a missing archive or a mismatched size is not trusted."""
    meta_path = entry / "image.json"
    if not meta_path.exists():
        return None
    try:
        meta = BuiltImage(**json.loads(meta_path.read_text()))
    except (TypeError, ValueError):
        return None  # written by an older harness: rebuilt
    archive = Path(meta.archive)
    if not archive.exists() or archive.stat().st_size != meta.size:
        return None
    if inputs is not None and meta.inputs != inputs:
        return None
    return meta


def _run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"{what}: `{' '.join(argv)}` exited {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def ldd_closure(paths: list[Path]) -> list[Path]:
    """Every shared library (and the dynamic loader) these programs load, resolved on
    this machine; static programs have none."""
    found: set[Path] = set()
    for path in paths:
        proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:  # "not a dynamic executable"
            continue
        for line in proc.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                found.add(Path(parts[2]))
            elif parts and parts[0].startswith("/"):
                found.add(Path(parts[0]))
    return sorted(found)


class ImageBuilder:
    """Builds and caches the images of the recipes, under `<cache>/images`."""

    def __init__(self, toolchain: Toolchain, cache_root: Path,
                 reporter: Reporter | None = None) -> None:
        self.toolchain = toolchain
        self.root = cache_root / "images"
        self.reporter = reporter or Reporter()
        self._hashes: dict[tuple[Path, int, int], str] = {}

    # ---- inputs ------------------------------------------------------------------------
    def resolve(self, source: Source) -> Path:
        if source.kind == "toolchain":
            return self.toolchain.binary(source.ref, source.name)
        if source.kind == "host":
            path = Path(source.ref)
            if not path.is_file():
                raise ImageError(f"{source.ref} is missing: it comes from a Debian package; "
                                 "run: harness toolchain install --only image-tools")
            return path
        if source.kind == "built" and source.ref == "pause":
            return self._pause()
        if source.kind == "built" and source.ref == "openbao-entrypoint":
            return self._script("openbao-entrypoint.sh", OPENBAO_ENTRYPOINT)
        if source.kind == "built" and source.ref == "argocd-cp":
            return self._script("argocd-cp.sh", ARGOCD_CP)
        if source.kind == "built" and source.ref == "gpg-wrapper":
            return self._script("gpg-wrapper.sh", GPG_WRAPPER)
        if source.kind == "built" and source.ref == "sample-app-metrics":
            return self._script("sample-app-metrics", SAMPLE_APP_METRICS)
        if source.kind == "built" and source.ref == "iptables-wrapper":
            return self._script("iptables-wrapper.sh", IPTABLES_WRAPPER)
        raise ImageError(f"unknown source {source.describe()}")

    def _hash(self, path: Path) -> str:
        """sha256 of a file, remembered while its size and mtime stay the same."""
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = sha256_file(path)
        return self._hashes[key]

    def _tool_versions(self) -> dict[str, str]:
        out = {}
        for name in ("umoci", "busybox"):
            binary = self.toolchain.binary("image-tools", name)
            out[name] = self._hash(binary)
        return out

    def inputs_hash(self, recipe: Recipe) -> str:
        """What the image is made of, as one hash: recipe, file contents, tools."""
        files = {dst: self._hash(self.resolve(src)) for dst, src in recipe.files.items()}
        libs = [str(p) + ":" + self._hash(p) for p in self._libs(recipe)]
        trees = {t: self._tree_hash(Path(t)) for t in recipe.host_trees}
        doc = {"schema": SCHEMA, "recipe": recipe.identity(), "files": files, "libs": libs,
               "trees": trees, "tools": self._tool_versions(),
               "ca": self._hash(CA_BUNDLE) if CA_BUNDLE.exists() else ""}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def _tree_hash(self, root: Path) -> str:
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            h.update(str(path).encode())
            if path.is_symlink():
                h.update(os.readlink(path).encode())
            elif path.is_file():
                h.update(self._hash(path).encode())
        return h.hexdigest()

    def _libs(self, recipe: Recipe) -> list[Path]:
        programs = []
        for image_path in recipe.libs_of:
            src = recipe.files.get(image_path)
            programs.append(self.resolve(src) if src else Path(image_path))
        return ldd_closure(programs)

    def _pause(self) -> Path:
        """pause, compiled statically from the Kubernetes module's own source, as its
        Makefile does (`gcc -Os -static -DVERSION=...`)."""
        out = self.root / "build" / "pause-3.10.1"
        if out.exists():
            return out
        spec = self.toolchain.spec("kubernetes")
        info = json.loads(_run(["go", "mod", "download", "-json",
                                f"{spec.module}@{spec.version}"], "download the pause source"))
        source = Path(info["Dir"]) / "build" / "pause" / "linux" / "pause.c"
        if not source.exists():
            raise ImageError(f"{source} missing from {spec.module}@{spec.version}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        _run(["gcc", "-Os", "-Wall", "-Werror", "-static", "-DVERSION=v3.10.1-heracles",
              "-o", str(tmp), str(source)], "compile pause (needs gcc and libc6-dev)")
        tmp.rename(out)
        return out

    def _script(self, name: str, text: str) -> Path:
        """A small file of ours in an image, written where its hash can be taken."""
        out = self.root / "build" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
            out.chmod(0o755)
        return out

    # ---- cache -------------------------------------------------------------------------
    def entry(self, recipe: Recipe) -> Path:
        return self.root / recipe.key

    def cached(self, recipe: Recipe, inputs: str | None = None) -> BuiltImage | None:
        """The cached archive of this recipe, if it exists and matches `inputs` (when
        given); a missing archive or a mismatched size is not trusted."""
        return cached_image(self.entry(recipe), inputs)

    def listing(self) -> list[tuple[Recipe, BuiltImage | None, str]]:
        """Every recipe with its cached archive and its state: ok | stale | missing."""
        out: list[tuple[Recipe, BuiltImage | None, str]] = []
        for recipe in select(None):
            meta = self.cached(recipe)
            if meta is None:
                out.append((recipe, None, "missing"))
                continue
            try:
                state = "ok" if meta.inputs == self.inputs_hash(recipe) else "stale"
            except HarnessError:
                state = "stale"
            out.append((recipe, meta, state))
        return out

    def build(self, only: list[str] | None = None, force: bool = False) -> list[BuiltImage]:
        return self.build_recipes(select(only), force)

    def build_recipes(self, recipes: list[Recipe], force: bool = False) -> list[BuiltImage]:
        results = []
        self.root.mkdir(parents=True, exist_ok=True)
        for recipe in recipes:
            with FileLock(str(self.root / f".{recipe.key}.lock")):
                results.append(self._build_one(recipe, force))
        return results

    def _build_one(self, recipe: Recipe, force: bool) -> BuiltImage:
        t0 = time.monotonic()
        inputs = self.inputs_hash(recipe)
        meta = None if force else self.cached(recipe, inputs)
        if meta is not None:  # silent: a cache hit is not progress worth a line
            meta.action = "cached"
            return meta
        with self.reporter.task(f"image {recipe.ref}") as task:
            entry = self.entry(recipe)
            entry.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f"heracles-image-{recipe.key}-",
                                             dir=self.root) as tmp_s:
                tmp = Path(tmp_s)
                layers = self._stage(recipe, tmp, task.step)
                layout = tmp / "layout"
                self._umoci(recipe, layout, layers, task.step)
                task.step("pack archive")
                archive = entry / "image.tar"
                partial = entry / "image.tar.partial"
                digest, image_id = pack_archive(layout, recipe.ref, partial)
                partial.rename(archive)
            meta = BuiltImage(recipe.key, recipe.ref, str(archive), digest, image_id,
                              archive.stat().st_size, inputs,
                              round(time.monotonic() - t0, 2), "built")
            (entry / "image.json").write_text(json.dumps(meta.as_json(), indent=2))
            return meta

    # ---- staging -----------------------------------------------------------------------
    def _stage(self, recipe: Recipe, tmp: Path, step: Callable[[str], None]) -> list[Path]:
        """Directories, one per layer: the shared base (busybox, /etc), then the app."""
        layers = []
        base = tmp / "base"
        step("stage base layer")
        _stage_base(base, shell=recipe.shell, busybox=self.toolchain.binary("image-tools",
                                                                           "busybox"))
        layers.append(base)
        app = tmp / "app"
        step("stage files")
        app.mkdir()
        for dst, src in recipe.files.items():
            _copy_file(self.resolve(src), app / dst.lstrip("/"))
        for link, target in recipe.symlinks.items():
            link_path = app / link.lstrip("/")
            link_path.parent.mkdir(parents=True, exist_ok=True)
            link_path.symlink_to(target)
        for tree in recipe.host_trees:
            tree_dst = app / tree.lstrip("/")
            tree_dst.parent.mkdir(parents=True, exist_ok=True)
            _run(["cp", "-a", tree, str(tree_dst)], f"copy {tree}")
        for lib in self._libs(recipe):
            # Under the name programs ask for (/lib64/ld-linux-x86-64.so.2), holding the
            # file that name resolves to on this machine.
            _copy_file(lib.resolve(), app / str(lib).lstrip("/"))
        for dir_path, mode in recipe.dirs.items():
            d = app / dir_path.lstrip("/")
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(mode)
        users = [("root", 0), *recipe.users, ("nobody", 65534)]
        etc = app / "etc"
        etc.mkdir(exist_ok=True)
        (etc / "passwd").write_text("".join(
            f"{n}:x:{uid}:{uid}:{n}:{'/root' if uid == 0 else '/home/' + n}:/bin/sh\n"
            for n, uid in users))
        (etc / "group").write_text("".join(f"{n}:x:{uid}:\n" for n, uid in users))
        layers.append(app)
        for layer in layers:
            _normalize(layer)
        return layers

    def _umoci(self, recipe: Recipe, layout: Path, layers: list[Path],
               step: Callable[[str], None]) -> None:
        umoci = str(self.toolchain.binary("image-tools", "umoci"))
        image = f"{layout}:{recipe.tag}"
        step("umoci: new image")
        _run([umoci, "init", "--layout", str(layout)], "umoci init")
        _run([umoci, "new", "--image", image], "umoci new")
        for layer in layers:
            # The layer's tar is ours (relative names, hard links kept, sorted, fixed
            # times); umoci adds it verbatim. `umoci insert` was tried first: it wrote
            # the Argo CD layer (278 MB, git's hard links) cut short, without its end
            # blocks, which containerd unpacked silently minus the last files.
            step(f"tar {layer.name} layer")
            tar_path = layer.with_suffix(".tar")
            write_layer_tar(layer, tar_path, {p.lstrip("/"): NET_BIND_XATTR
                                              for p in recipe.net_bind})
            step(f"umoci: add {layer.name} layer")
            _run([umoci, "raw", "add-layer", "--image", image, "--history.created", EPOCH,
                  "--history.created_by", f"heracles-harness images ({layer.name})",
                  str(tar_path)], f"umoci raw add-layer {layer.name}")
            tar_path.unlink()
        step("umoci: config")
        argv = [umoci, "config", "--image", image, "--created", EPOCH,
                "--history.created", EPOCH, "--architecture", "amd64", "--os", "linux",
                "--config.label", "org.opencontainers.image.source=heracles-harness",
                "--config.label", f"dev.heracles.image={recipe.key}"]
        argv += [f"--config.entrypoint={a}" for a in recipe.entrypoint]
        argv += [f"--config.cmd={a}" for a in recipe.cmd]
        argv += [f"--config.env={e}" for e in recipe.env]
        argv += [f"--config.exposedports={p}" for p in recipe.ports]
        if recipe.user:
            argv.append(f"--config.user={recipe.user}")
        if recipe.workdir:
            argv.append(f"--config.workingdir={recipe.workdir}")
        _run(argv, "umoci config")
        _run([umoci, "gc", "--layout", str(layout)], "umoci gc")


CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

# `cp` in the Argo CD image: GNU's `--update=none` (never overwrite, not an error) is
# busybox's `-n`; everything else goes to busybox cp unchanged.
ARGOCD_CP = """#!/bin/busybox sh
for arg; do
  shift
  case "$arg" in
    --update=none|--no-clobber) set -- "$@" -n ;;
    *) set -- "$@" "$arg" ;;
  esac
done
exec /bin/busybox cp "$@"
"""

# The repo-server runs `gpg-wrapper.sh` (the upstream image's, from argo-cd's hack/) to
# list and import keys: gpg itself, here, with nothing around it.
GPG_WRAPPER = """#!/bin/sh
exec gpg "$@"
"""

SAMPLE_APP_METRICS = """# HELP sample_app_up The sample workload answers.
# TYPE sample_app_up gauge
sample_app_up 1
"""

# kube-proxy's iptables: the mode the node already uses (the one holding more rules,
# legacy on a tie: kind's entrypoint decides the same way), linked once, then run.
IPTABLES_WRAPPER = """#!/bin/sh
legacy=$( (xtables-legacy-multi iptables-save; xtables-legacy-multi ip6tables-save) \\
  2>/dev/null | grep -c '^-')
nft=$( (timeout 5 xtables-nft-multi iptables-save; timeout 5 xtables-nft-multi \\
  ip6tables-save) 2>/dev/null | grep -c '^-')
if [ "${legacy:-0}" -ge "${nft:-0}" ]; then mode=legacy; else mode=nft; fi
for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore
do
  ln -sf "xtables-$mode-multi" "/usr/sbin/$c"
done
exec "/usr/sbin/$(basename "$0")" "$@"
"""

# The upstream OpenBao image's entrypoint, which the Vault chart's server command calls
# (`/usr/local/bin/docker-entrypoint.sh bao server ...`), reduced to what a non-root Pod
# uses of it: a first argument that is a flag or a bao subcommand gets `bao` in front.
OPENBAO_ENTRYPOINT = """#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- bao "$@"; fi
case "$1" in
  server|version|status|operator|login|read|write|kv|secrets|auth|policy) set -- bao "$@" ;;
esac
exec "$@"
"""


def _stage_base(base: Path, shell: bool, busybox: Path) -> None:
    """The layer every image shares: /etc basics, /tmp, CA certificates, and busybox with
    its applets linked into /bin when the image wants a shell."""
    for d, mode in (("etc", 0o755), ("tmp", 0o1777), ("root", 0o700),
                    ("etc/ssl/certs", 0o755)):
        (base / d).mkdir(parents=True, exist_ok=True)
        (base / d).chmod(mode)
    (base / "etc/nsswitch.conf").write_text("hosts: files dns\n")
    if CA_BUNDLE.exists():
        shutil.copyfile(CA_BUNDLE, base / "etc/ssl/certs/ca-certificates.crt")
    if shell:
        bin_dir = base / "bin"
        bin_dir.mkdir()
        _copy_file(busybox, bin_dir / "busybox")
        applets = _run([str(busybox), "--list"], "busybox --list").split()
        for applet in applets:
            if applet != "busybox" and not (bin_dir / applet).exists():
                (bin_dir / applet).symlink_to("busybox")


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(0o755 if os.access(src, os.X_OK) else 0o644)


# security.capability holding cap_net_bind_service (bit 10) permitted + effective:
# struct vfs_cap_data, revision 2, little endian. Carried as a PAX xattr record, which
# containerd's and docker's unpackers set on the file.
NET_BIND_XATTR = {"SCHILY.xattr.security.capability": (
    (0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little")
    + bytes(12)).decode("latin-1")}


def write_layer_tar(root: Path, out: Path,
                    xattrs: dict[str, dict[str, str]] | None = None) -> None:
    """A layer as a POSIX tar: names relative to `root`, sorted, owner root, mtime 0,
    hard links as links (git's builtins are one file under many names); `xattrs` adds
    PAX records to the named members."""
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        if xattrs and info.name in xattrs:
            info.pax_headers = {**info.pax_headers, **xattrs[info.name]}
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).parts):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False,
                    filter=clean)


def _normalize(root: Path) -> None:
    """Fixed mtimes and owners, so the same inputs give the same layer digest."""
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 0, 0)
        os.utime(path, (0, 0), follow_symlinks=False)


# ---- the archive ---------------------------------------------------------------------

def pack_archive(layout: Path, ref: str, out: Path) -> tuple[str, str]:
    """The umoci layout as one tar: OCI (`index.json` naming `ref` the way containerd
    reads it) plus docker's `manifest.json`. Returns the manifest and config digests."""
    index = json.loads((layout / "index.json").read_text())
    if len(index.get("manifests", [])) != 1:
        raise ImageError(f"{layout}: expected one image in the layout, found "
                         f"{len(index.get('manifests', []))}")
    desc = index["manifests"][0]
    digest = desc["digest"]
    manifest = json.loads(_blob(layout, digest).read_text())
    tag = ref.rsplit(":", 1)[1]
    desc["annotations"] = {"io.containerd.image.name": ref,
                           "org.opencontainers.image.ref.name": tag}
    docker_manifest = [{
        "Config": _blob_name(manifest["config"]["digest"]),
        "RepoTags": [_docker_name(ref)],
        "Layers": [_blob_name(layer["digest"]) for layer in manifest["layers"]],
    }]
    members: list[tuple[str, bytes | Path]] = [
        ("oci-layout", (layout / "oci-layout").read_bytes()),
        ("index.json", json.dumps(index).encode()),
        ("manifest.json", json.dumps(docker_manifest).encode()),
    ]
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    members += [(f"blobs/sha256/{b.name}", b) for b in blobs]
    with tarfile.open(out, "w") as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, content in members:
            with _member(name, content) as (info, fh):
                tar.addfile(info, fh)
    return digest, manifest["config"]["digest"]


@contextmanager
def _member(name: str, content: bytes | Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o644, 0
    if isinstance(content, bytes):
        info.size = len(content)
        yield info, io.BytesIO(content)
        return
    info.size = content.stat().st_size
    with content.open("rb") as fh:
        yield info, fh


def _blob(layout: Path, digest: str) -> Path:
    algo, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algo / hexdigest


def _blob_name(digest: str) -> str:
    algo, hexdigest = digest.split(":", 1)
    return f"blobs/{algo}/{hexdigest}"


def _docker_name(ref: str) -> str:
    """docker's short form for Docker Hub names (docker.io/library/x:t -> x:t)."""
    for prefix in ("docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            return ref.removeprefix(prefix)
    return ref
