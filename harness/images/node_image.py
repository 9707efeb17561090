"""The kind node image, assembled here: what kind's `images/base` Dockerfile and
`kind build node-image` produce, without a registry or a base image to pull.

- a Debian bookworm root filesystem from mmdebstrap (systemd as /sbin/init, containerd,
  runc, the CNI plugins, iptables...), cached by its package list;
- kind's own files from its Go module (`images/base/files`: the entrypoint, the systemd
  units and drop-ins, containerd's config), set up as its Dockerfile does;
- kubeadm, kubelet and kubectl from the toolchain in /usr/bin, `/kind/version`;
- the images kubeadm and the node need (`KIND_NODE_IMAGES`), built by the image pipeline
  and imported into containerd's `k8s.io` namespace at build time by a containerd of
  the same version, so `kubeadm init` pulls nothing;
- what this machine needs on top (docs/kind.md): runc behind the capability wrapper,
  containerd's `restrict_oom_score_adj`, and a static CNI config in place of kindnetd
  (not served as a Go module).

`kind build node-image` is not called: it fetches every image it did not build itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from harness.images.build import (
    EPOCH,
    BuiltImage,
    ImageBuilder,
    ImageError,
    _run,
    cached_image,
    pack_archive,
)
from harness.images.recipes import KIND_NODE_IMAGES, KUBE_VERSION, PAUSE, select
from harness.progress import Reporter
from harness.toolchain import Toolchain

NODE_REF = f"localhost/heracles/kind-node:{KUBE_VERSION}"
SCHEMA = 1  # bump when the way the node image is assembled changes
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# kind's base image packages (its Dockerfile), minus nfs-common/open-iscsi (no such
# storage here), plus Python (interpreter and standard library) for the runc wrapper.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "containerd", "runc",
            "containernetworking-plugins", "conntrack", "iptables", "nftables", "iproute2",
            "ethtool", "util-linux", "mount", "kmod", "libseccomp2", "pigz", "bash",
            "ca-certificates", "curl", "jq", "procps", "python3-minimal",
            "libpython3-stdlib")
# containerd's sandbox tag in kind's config, next to the one kubeadm wants (PAUSE).
SANDBOX_PAUSE = "registry.k8s.io/pause:3.10"
POD_SUBNET = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"  # the first node's podCIDR from POD_SUBNET
STORAGE_CLASS = "standard"  # kind's name for its default class

# In place of kindnetd: Debian's plugins, the pod network of the (single) node.
CNI_CONFIG = {
    "cniVersion": "0.4.0", "name": "kindnet",
    "plugins": [
        {"type": "ptp", "ipMasq": True, "mtu": 1500,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": NODE_POD_CIDR}]],
                  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni-ipam-state"}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
# kind applies this file; the network is the static config above, so it installs no
# agent, only says where the network comes from.
DEFAULT_CNI = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "heracles-cni", "namespace": "kube-system"},
    "data": {"source": "static CNI config /etc/cni/net.d/10-kindnet.conflist in the node "
                       "image (ptp + host-local + portmap): kindnetd is not built here",
             "podSubnet": "{{ .PodSubnet }}"},
}


def kind_base_files(toolchain: Toolchain) -> Path:
    """`images/base/files` of the kind module the toolchain builds kind from."""
    spec = toolchain.spec("kind")
    info = json.loads(_run(["go", "mod", "download", "-json",
                            f"{spec.module}@{spec.version}"], "download the kind module"))
    files = Path(info["Dir"]) / "images" / "base" / "files"
    if not (files / "usr" / "local" / "bin" / "entrypoint").is_file():
        raise ImageError(f"{files}: kind's node entrypoint is missing from "
                         f"{spec.module}@{spec.version}")
    return files


def default_storage(upstream: Path) -> list[dict[str, Any]]:
    """local-path-provisioner's own manifest as kind ships it: our image tags (preloaded),
    volumes under /var/local-path-provisioner, the class named `standard` and default."""
    from harness.images.recipes import BUSYBOX, LOCAL_PATH

    docs = [d for d in yaml.safe_load_all(upstream.read_text()) if d]
    for doc in docs:
        kind = doc.get("kind")
        if kind == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                c["image"], c["imagePullPolicy"] = LOCAL_PATH, "IfNotPresent"
                c["command"] = [a for a in c["command"] if a != "--debug"]
        elif kind == "StorageClass":
            doc["metadata"]["name"] = STORAGE_CLASS
            doc["metadata"].setdefault("annotations", {})[
                "storageclass.kubernetes.io/is-default-class"] = "true"
        elif kind == "ConfigMap" and doc["metadata"]["name"] == "local-path-config":
            data = doc["data"]
            data["config.json"] = json.dumps({"nodePathMap": [
                {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                 "paths": ["/var/local-path-provisioner"]}]})
            helper = yaml.safe_load(data["helperPod.yaml"])
            for c in helper["spec"]["containers"]:
                c["image"], c["imagePullPolicy"] = BUSYBOX, "IfNotPresent"
            data["helperPod.yaml"] = yaml.safe_dump(helper, sort_keys=False)
    return docs


class NodeImageBuilder:
    """Builds and caches the node image under `<cache>/images/kind-node`."""

    key = "kind-node"

    def __init__(self, toolchain: Toolchain, cache_root: Path,
                 reporter: Reporter | None = None) -> None:
        self.toolchain = toolchain
        self.reporter = reporter or Reporter()
        self.images = ImageBuilder(toolchain, cache_root, self.reporter)
        self.root = self.images.root / self.key
        self.build_dir = self.images.root / "build"

    # ---- inputs ------------------------------------------------------------------------
    def binaries(self) -> dict[str, Path]:
        return {"kubeadm": self.toolchain.binary("kubeadm", "kubeadm"),
                "kubelet": self.toolchain.binary("kubernetes-node", "kubelet"),
                "kubectl": self.toolchain.binary("kubernetes", "kubectl"),
                "crictl": self.toolchain.binary("cri-tools", "crictl")}

    def _runc_wrapper(self) -> str:
        from harness.runtime import runc_wrapper

        return runc_wrapper.script("/usr/bin/python3")

    def _storage_upstream(self) -> Path:
        return self.toolchain.file("local-path-provisioner", "local-path-storage.yaml")

    def inputs_hash(self, preload: list[BuiltImage]) -> str:
        base = kind_base_files(self.toolchain)
        doc = {"schema": SCHEMA, "ref": NODE_REF, "suite": SUITE, "packages": PACKAGES,
               "kind": {str(p.relative_to(base)): self.images._hash(p)
                        for p in sorted(base.rglob("*")) if p.is_file()},
               "binaries": {k: self.images._hash(p) for k, p in self.binaries().items()},
               "images": {i.ref: i.digest for i in preload},
               "runc": self._runc_wrapper(), "cni": CNI_CONFIG, "cni_yaml": DEFAULT_CNI,
               "storage": self.images._hash(self._storage_upstream()),
               "containerd": self.images._hash(Path(shutil.which("containerd") or "/dev/null")),
               "tools": self.images._tool_versions()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def cached(self, inputs: str | None = None) -> BuiltImage | None:
        return cached_image(self.root, inputs)

    # ---- build -------------------------------------------------------------------------
    def build(self, force: bool = False) -> BuiltImage:
        if os.geteuid() != 0:
            raise ImageError("the kind node image needs root (mmdebstrap, chroot, and a "
                             "containerd to preload its images)")
        for tool in ("mmdebstrap", "containerd", "ctr", "tar"):
            if not shutil.which(tool):
                raise ImageError(f"{tool} is missing: run "
                                 "harness toolchain install --only image-tools,node-tools")
        preload = self.images.build_recipes(select(list(KIND_NODE_IMAGES)))
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.images.root / f".{self.key}.lock")):
            t0 = time.monotonic()
            inputs = self.inputs_hash(preload)
            meta = None if force else self.cached(inputs)
            if meta is not None:
                meta.action = "cached"
                return meta
            with self.reporter.task(f"image {NODE_REF}") as task, \
                    tempfile.TemporaryDirectory(prefix="hn-", dir="/tmp") as tmp_s:
                tmp = Path(tmp_s)
                rootfs = self._rootfs(task.step)
                stage = tmp / "rootfs"
                task.step("unpack the Debian root filesystem")
                stage.mkdir()
                _run(["tar", "-C", str(stage), "--numeric-owner", "--xattrs",
                      "--xattrs-include=*", "-xpf", str(rootfs)], "unpack the rootfs")
                task.step("kind's base files, systemd units, containerd config")
                self._configure(stage)
                self._preload(stage, tmp, preload, task.step)
                archive = self._pack(stage, tmp, task.step)
            meta = BuiltImage(self.key, NODE_REF, str(archive[0]), archive[1], archive[2],
                              archive[0].stat().st_size, inputs,
                              round(time.monotonic() - t0, 2), "built")
            (self.root / "image.json").write_text(json.dumps(meta.as_json(), indent=2))
            return meta

    def _rootfs(self, step: Callable[[str], None]) -> Path:
        """The Debian root filesystem as a tar, cached by suite and package list."""
        key = hashlib.sha256(json.dumps([SUITE, MIRROR, PACKAGES]).encode()).hexdigest()[:16]
        out = self.build_dir / f"kind-node-rootfs-{key}.tar"
        if out.exists():
            return out
        step(f"mmdebstrap {SUITE} ({len(PACKAGES)} packages and their dependencies)")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial.tar")
        _run(["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
              f"--include={','.join(PACKAGES)}", SUITE, str(partial), MIRROR],
             "mmdebstrap the node's root filesystem")
        partial.rename(out)
        return out

    def _configure(self, stage: Path) -> None:
        """What kind's base Dockerfile does, plus this machine's needs."""
        files = kind_base_files(self.toolchain)
        for src in sorted(files.rglob("*")):
            rel = src.relative_to(files)
            if src.is_dir() or rel.parts[0] == "LICENSES":
                continue
            if rel.name == "containerd-fuse-overlayfs.service":
                continue  # its snapshotter binary is not built here (rootless only)
            dst = stage / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            executable = rel.parts[:3] == ("usr", "local", "bin") or rel.parts[:2] == (
                "kind", "bin")
            dst.chmod(0o755 if executable else 0o644)
        (stage / "kind").chmod(0o755)
        (stage / "kind" / "bin").chmod(0o755)
        # containerd: kind's config; OOM score adjustments restricted (the node is a
        # container whose own score the kernel will not let a child lower)
        config = stage / "etc/containerd/config.toml"
        text = config.read_text()
        if "restrict_oom_score_adj = false" not in text:
            raise ImageError(f"{files}/etc/containerd/config.toml: no "
                             "restrict_oom_score_adj line to set")
        config.write_text(text.replace("restrict_oom_score_adj = false",
                                       "restrict_oom_score_adj = true"))
        # kind's units start /usr/local/bin/containerd; Debian's is in /usr/bin
        (stage / "usr/local/bin/containerd").symlink_to("/usr/bin/containerd")
        # runc: first on PATH, the wrapper dropping capabilities this machine lacks
        wrapper = stage / "usr/local/sbin/runc"
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(self._runc_wrapper())
        wrapper.chmod(0o755)
        for name, path in self.binaries().items():
            # kind's image has crictl in /usr/local/bin, the rest in /usr/bin
            dst = stage / ("usr/local/bin" if name == "crictl" else "usr/bin") / name
            shutil.copyfile(path, dst)
            dst.chmod(0o755)
        (stage / "kind/version").write_text(KUBE_VERSION)
        manifests = stage / "kind/manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        (manifests / "default-cni.yaml").write_text(yaml.safe_dump(DEFAULT_CNI,
                                                                  sort_keys=False))
        (manifests / "default-storage.yaml").write_text(yaml.safe_dump_all(
            default_storage(self._storage_upstream()), sort_keys=False))
        cni = stage / "etc/cni/net.d"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-kindnet.conflist").write_text(json.dumps(CNI_CONFIG, indent=2))
        (stage / "opt/cni").mkdir(parents=True, exist_ok=True)
        (stage / "opt/cni/bin").symlink_to("/usr/lib/cni")
        (stage / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
        script = (
            "set -e\n"
            "find /lib/systemd/system/sysinit.target.wants/ -name "
            "systemd-tmpfiles-setup.service -delete\n"
            "rm -f /lib/systemd/system/multi-user.target.wants/* "
            "/etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* "
            "/lib/systemd/system/sockets.target.wants/*udev* "
            "/lib/systemd/system/sockets.target.wants/*initctl* "
            "/lib/systemd/system/basic.target.wants/*\n"
            "echo ReadKMsg=no >> /etc/systemd/journald.conf\n"
            "systemctl enable kubelet.service containerd.service undo-mount-hacks.service\n"
            "systemctl mask systemd-binfmt.service\n"
            "ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer| length] |= "
            ". + {\"path\": \"/kind/bin/mount-product-files.sh\"}' "
            "| jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json\n"
            "test -x /sbin/init\n"
            "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n")
        _run(["chroot", str(stage), "/bin/sh", "-c", script],
             "set the node's systemd units up (chroot)")

    def _preload(self, stage: Path, tmp: Path, preload: list[BuiltImage],
                 step: Callable[[str], None]) -> None:
        """Import the images into the node's containerd store (`k8s.io`), with a
        containerd of the node's own version running on the stage's /var/lib/containerd
        in a mount namespace of its own."""
        state = tmp / "c"
        state.mkdir()
        sock = state / "sock"
        config = state / "config.toml"
        config.write_text(
            f'version = 2\nroot = "{stage}/var/lib/containerd"\nstate = "{state}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n')
        step("containerd: start on the node's store")
        log = (state / "containerd.log").open("w")
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                 "containerd", "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ImageError("the preload containerd did not start: "
                                     f"{(state / 'containerd.log').read_text()[-800:]}")
                time.sleep(0.2)
            ctr = ["ctr", "--address", str(sock), "--namespace", "k8s.io"]
            for image in preload:
                step(f"preload {image.ref}")
                _run([*ctr, "images", "import", "--no-unpack", "--all-platforms",
                      image.archive], f"import {image.ref} into the node")
            _run([*ctr, "images", "tag", "--force", PAUSE, SANDBOX_PAUSE],
                 "tag pause with containerd's sandbox tag")
            listed = _run([*ctr, "images", "ls", "-q"], "list the node's images").split()
            missing = [i.ref for i in preload if i.ref not in listed]
            if missing:
                raise ImageError(f"not in the node's store after import: {missing}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        for leftover in ("tmpmounts", "io.containerd.runtime.v2.task"):
            shutil.rmtree(stage / "var/lib/containerd" / leftover, ignore_errors=True)

    def _pack(self, stage: Path, tmp: Path,
              step: Callable[[str], None]) -> tuple[Path, str, str]:
        """One layer (owners and xattrs kept: a Debian system, not an app), the OCI
        config kind's Dockerfile sets, the archive every loader reads."""
        umoci = str(self.toolchain.binary("image-tools", "umoci"))
        layout = tmp / "layout"
        image = f"{layout}:{KUBE_VERSION}"
        layer = tmp / "layer.tar"
        step("tar the root filesystem")
        _run(["tar", "-C", str(stage), "--numeric-owner", "--xattrs", "--sort=name",
              "--mtime=@0", "-cf", str(layer), "."], "tar the node's root filesystem")
        shutil.rmtree(stage)
        step("umoci: image with one layer")
        _run([umoci, "init", "--layout", str(layout)], "umoci init")
        _run([umoci, "new", "--image", image], "umoci new")
        _run([umoci, "raw", "add-layer", "--image", image, "--history.created", EPOCH,
              "--history.created_by", "heracles-harness images node-image", str(layer)],
             "umoci raw add-layer")
        layer.unlink()
        _run([umoci, "config", "--image", image, "--created", EPOCH,
              "--history.created", EPOCH, "--architecture", "amd64", "--os", "linux",
              "--config.label", "org.opencontainers.image.source=heracles-harness",
              "--config.label", f"dev.heracles.image={self.key}",
              "--config.env=container=docker",
              "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "--config.entrypoint=/usr/local/bin/entrypoint",
              "--config.entrypoint=/sbin/init", "--config.stopsignal=SIGRTMIN+3"],
             "umoci config")
        _run([umoci, "gc", "--layout", str(layout)], "umoci gc")
        step("pack archive")
        archive = self.root / "image.tar"
        partial = self.root / "image.tar.partial"
        digest, image_id = pack_archive(layout, NODE_REF, partial)
        partial.rename(archive)
        return archive, digest, image_id


def main(argv: list[str]) -> None:  # pragma: no cover - a debugging entry point
    from harness.settings import Settings

    settings = Settings()
    print(NodeImageBuilder(Toolchain(settings.cache_dir), settings.cache_dir).build(
        force="--force" in argv).as_json())


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
