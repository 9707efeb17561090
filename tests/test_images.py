"""The image pipeline against the real tools: umoci writes the layout, skopeo reads the
archive both as OCI and as docker's format, inputs decide when a rebuild happens, and the
same inputs give the same digest (containerd and docker loads are in the node and kind
scenarios)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.images import ImageBuilder
from harness.images.recipes import RECIPES, Recipe, Source
from harness.settings import Settings
from harness.toolchain import Toolchain


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    tc = Toolchain(Settings().cache_dir)
    if tc.problem("image-tools"):
        pytest.skip(f"image tools missing: {tc.problem('image-tools')}")
    return tc


def recipe(tmp_path: Path, content: str) -> Recipe:
    payload = tmp_path / "payload.txt"
    payload.write_text(content)
    return Recipe("test-image", "heracles.local/test/image:1", {
        "/payload.txt": Source("host", str(payload))}, entrypoint=("/bin/cat",),
        cmd=("/payload.txt",), user="65534:65534", env=("A=1",))


def skopeo(toolchain: Toolchain, *args: str) -> dict:
    out = subprocess.run([str(toolchain.binary("image-tools", "skopeo")), *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_an_archive_reads_as_oci_and_as_docker_with_the_recipe_config(
        toolchain: Toolchain, tmp_path: Path) -> None:
    builder = ImageBuilder(toolchain, tmp_path / "cache")
    [image] = builder.build_recipes([recipe(tmp_path, "one")])
    assert image.action == "built"
    oci = skopeo(toolchain, "inspect", "--config", f"oci-archive:{image.archive}")
    docker = skopeo(toolchain, "inspect", "--config", f"docker-archive:{image.archive}")
    for cfg in (oci, docker):
        assert cfg["config"]["Entrypoint"] == ["/bin/cat"]
        assert cfg["config"]["Cmd"] == ["/payload.txt"]
        assert cfg["config"]["User"] == "65534:65534"
        assert cfg["created"].startswith("1970-01-01")
    with tarfile.open(image.archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        names = tar.getnames()
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == \
        "heracles.local/test/image:1"
    assert manifest[0]["RepoTags"] == ["heracles.local/test/image:1"]
    assert manifest[0]["Config"] == "blobs/sha256/" + image.image_id.split(":")[1]
    assert all(layer in names for layer in manifest[0]["Layers"])
    # busybox applets in the base layer, the payload in the app layer
    assert len(manifest[0]["Layers"]) == 2


def test_cached_until_an_input_changes_and_reproducible(
        toolchain: Toolchain, tmp_path: Path) -> None:
    builder = ImageBuilder(toolchain, tmp_path / "cache")
    [first] = builder.build_recipes([recipe(tmp_path, "one")])
    [again] = builder.build_recipes([recipe(tmp_path, "one")])
    assert again.action == "cached" and again.digest == first.digest
    [changed] = builder.build_recipes([recipe(tmp_path, "two")])
    assert changed.action == "built" and changed.digest != first.digest
    # Same inputs, built from scratch elsewhere: the same bytes.
    [elsewhere] = ImageBuilder(toolchain, tmp_path / "other").build_recipes(
        [recipe(tmp_path, "two")])
    assert elsewhere.action == "built"
    assert (elsewhere.digest, elsewhere.image_id) == (changed.digest, changed.image_id)


def test_a_truncated_archive_is_rebuilt_not_trusted(toolchain: Toolchain,
                                                    tmp_path: Path) -> None:
    builder = ImageBuilder(toolchain, tmp_path / "cache")
    [first] = builder.build_recipes([recipe(tmp_path, "one")])
    with open(first.archive, "r+b") as fh:
        fh.truncate(100)
    [again] = builder.build_recipes([recipe(tmp_path, "one")])
    assert again.action == "built" and again.digest == first.digest


def test_a_missing_input_names_the_file_and_the_fix(toolchain: Toolchain,
                                                    tmp_path: Path) -> None:
    from harness.images import ImageError

    broken = Recipe("broken", "heracles.local/test/broken:1",
                    {"/x": Source("host", str(tmp_path / "absent"))})
    with pytest.raises(ImageError, match=r"absent is missing.*harness toolchain install"):
        ImageBuilder(toolchain, tmp_path / "cache").build_recipes([broken])
    assert not (tmp_path / "cache" / "images" / "broken" / "image.tar").exists()


def test_openbao_image_answers_to_vault_and_argocd_to_every_component_name(
        toolchain: Toolchain, tmp_path: Path) -> None:
    """What the recipes promise the charts and the runbook, read from the archives."""
    builder = ImageBuilder(toolchain, tmp_path / "cache")
    for key, link, target in (("openbao", "bin/vault", "bao"),
                              ("argocd", "usr/local/bin/argocd-repo-server", "argocd")):
        if any(toolchain.problem(s.ref) for s in RECIPES[key].files.values()
               if s.kind == "toolchain"):
            pytest.skip(f"{key}'s binaries are not built")
        [image] = builder.build([key])
        layout = tmp_path / key
        layout.mkdir()
        with tarfile.open(image.archive) as tar:
            tar.extractall(layout, filter="data")
        manifest = json.loads((layout / "manifest.json").read_text())[0]
        # GNU tar: umoci's layers are multi-member gzip streams Python's tarfile refuses
        listing = "".join(subprocess.run(["tar", "-tvzf", str(layout / layer)],
                                         capture_output=True, text=True, check=True).stdout
                          for layer in manifest["Layers"])
        assert re.search(rf"^l\S+ .* /?{re.escape(link)} -> {target}$", listing, re.M), link
        shutil.rmtree(layout)


def test_images_cli_lists_states(toolchain: Toolchain, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["images", "list", "--json"],
                                env={"HERACLES_CACHE_DIR": str(tmp_path / "empty")})
    rows = json.loads(result.output)
    assert {r["key"] for r in rows} == set(RECIPES)
    assert {r["state"] for r in rows} == {"missing"}
    assert result.exit_code == 1
    bad = CliRunner().invoke(main, ["images", "build", "--only", "nope"])
    assert bad.exit_code != 0 and "unknown image(s): nope" in bad.output


def test_a_net_bind_program_carries_its_file_capability_into_the_layer(
        toolchain: Toolchain, tmp_path: Path) -> None:
    """CoreDNS binds :53 as nobody (kubeadm's Deployment drops every capability but
    NET_BIND_SERVICE): the upstream image's file capability, unpacked by GNU tar with
    xattrs as containerd and docker do, reads back with getcap."""
    base = recipe(tmp_path, "caps")
    capped = Recipe(base.key, base.ref, base.files, shell=False, net_bind=("/payload.txt",))
    [image] = ImageBuilder(toolchain, tmp_path / "cache").build_recipes([capped])
    out = tmp_path / "out"
    with tarfile.open(image.archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        tar.extractall(out, filter="data")
    app = out / manifest[0]["Layers"][-1]
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-C", str(root), "-xzf",
                    str(app)], check=True)
    getcap = shutil.which("getcap") or "/usr/sbin/getcap"
    if not Path(getcap).exists():
        pytest.skip("getcap (libcap2-bin) missing")
    caps = subprocess.run([getcap, str(root / "payload.txt")], capture_output=True,
                          text=True, check=True).stdout
    assert "cap_net_bind_service=ep" in caps
    # and the recipe's identity changes with it: no stale archive without the capability
    assert capped.identity() != base.identity()


def test_the_kind_node_storage_is_kinds_standard_class_from_the_provisioner_manifest(
        toolchain: Toolchain) -> None:
    from harness.images.node_image import CNI_CONFIG, NODE_POD_CIDR, default_storage
    from harness.images.recipes import BUSYBOX, LOCAL_PATH

    upstream = toolchain.file("local-path-provisioner", "local-path-storage.yaml")
    docs = {d["kind"]: d for d in default_storage(upstream)}
    sc = docs["StorageClass"]
    assert sc["metadata"]["name"] == "standard"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] \
        == "true"
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == LOCAL_PATH and container["imagePullPolicy"] == "IfNotPresent"
    assert BUSYBOX in docs["ConfigMap"]["data"]["helperPod.yaml"]
    ipam = CNI_CONFIG["plugins"][0]["ipam"]  # type: ignore[index]
    assert ipam["ranges"] == [[{"subnet": NODE_POD_CIDR}]]


def test_kube_proxy_carries_iptables_extensions_and_what_they_link() -> None:
    """Found on the first kind cluster: `-m statistic` failed in kube-proxy's image
    ("Couldn't load match") because the extension's libm was not in it."""
    from harness.images.recipes import XTABLES_DIR, XTABLES_EXTENSIONS

    proxy = RECIPES["kube-proxy"]
    if not XTABLES_EXTENSIONS:
        pytest.skip(f"no iptables extensions in {XTABLES_DIR} (iptables not installed)")
    assert f"{XTABLES_DIR}/libxt_statistic.so" in proxy.libs_of
    assert XTABLES_DIR in proxy.host_trees
