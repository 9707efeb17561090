"""The toolchain lock and cache; real Go builds where the behaviour needs one."""

import json
import os
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError, ToolchainError
from harness.progress import Reporter
from harness.toolchain import Toolchain
from harness.toolchain.cache import BinaryCache
from harness.toolchain.lock import load_lock

LOCK = load_lock()


def test_the_lock_pins_every_component_the_local_backend_runs():
    assert set(LOCK.components) >= {
        "etcd", "kubernetes", "kwok", "external-secrets", "argocd", "toxiproxy", "openbao",
        "prometheus", "alertmanager", "redis", "git"}
    k8s = LOCK.components["kubernetes"]
    assert k8s.version.startswith("v1.34.") and set(k8s.binaries) == {
        "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}
    assert LOCK.components["etcd"].version.startswith("v3.6.")
    assert set(LOCK.components["etcd"].binaries) == {"etcd", "etcdctl", "etcdutl"}


def test_unknown_component_is_named():
    with pytest.raises(HarnessError, match=r"unknown toolchain component.*nope.*known: etcd"):
        LOCK.select(["etcd", "nope"])


@pytest.mark.parametrize("body,message", [
    ("schema = 2\n", "unsupported lock schema 2"),
    ("schema = 1\n[components.x]\nsource = 'brew'\nversion='1'\nbinaries={a='a'}\n",
     "component 'x': source must be one of"),
    ("schema = 1\n[components.x]\nsource = 'go'\nversion='1'\nbinaries={a='a'}\n",
     "component 'x': a go component needs module"),
    ("schema = [\n", "cannot read toolchain lock"),
])
def test_a_bad_lock_names_file_and_entry(tmp_path, body, message):
    lock = tmp_path / "bad.toml"
    lock.write_text(body)
    with pytest.raises(HarnessError, match=message) as exc:
        load_lock(lock)
    assert str(lock) in str(exc.value)


def fake_entry(cache: BinaryCache, name: str = "kwok") -> Path:
    spec = LOCK.components[name]
    staged = cache.root / "staged"
    staged.mkdir(parents=True, exist_ok=True)
    for b in spec.binaries:
        (staged / b).write_bytes(b"#!/bin/sh\necho fake\n" + os.urandom(64))
    return cache.commit(spec, staged, {"build_seconds": 1.0})


def test_cache_detects_partial_truncated_altered_and_stale_entries(tmp_path):
    cache = BinaryCache(tmp_path)
    spec = LOCK.components["kwok"]
    assert cache.check(spec).state == "missing"
    entry = fake_entry(cache)
    assert cache.check(spec).ok and cache.check(spec, deep=False).ok
    binary = entry / "bin" / "kwok"

    data = binary.read_bytes()
    binary.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, other content
    assert cache.check(spec).state == "corrupt"
    assert "checksum" in cache.check(spec).detail
    assert cache.check(spec, deep=False).state == "corrupt"  # mtime moved

    binary.write_bytes(data[:10])
    assert "truncated" in cache.check(spec, deep=False).detail

    fake_entry(cache)
    (entry / "manifest.json").unlink()
    assert cache.check(spec).detail == "no manifest (partial entry)"

    fake_entry(cache)
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["fingerprint"] = "another-recipe"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert cache.check(spec).state == "stale"


def test_runtime_refuses_a_damaged_binary_and_names_the_fix(tmp_path):
    tc = Toolchain(tmp_path)
    with pytest.raises(HarnessError, match=r"kwok.*missing.*harness toolchain install --only kwok"):
        tc.binary("kwok", "kwok")
    entry = fake_entry(tc.cache)
    (entry / "bin" / "kwok").write_bytes(b"x")
    with pytest.raises(HarnessError, match="corrupt"):
        tc.binary("kwok", "kwok")


@pytest.mark.slow
def test_real_go_build_then_cached_then_corruption_rebuilt(tmp_path):
    """toxiproxy, built for real from its module; the second install rebuilds nothing."""
    tc = Toolchain(tmp_path)
    [built] = tc.install(["toxiproxy"], Reporter())
    assert built.action == "built"
    server = tc.binary("toxiproxy", "toxiproxy-server")
    assert os.access(server, os.X_OK)
    go_mod = (tc.cache.build_dir(tc.spec("toxiproxy")) / "go.mod").read_text()
    assert "require github.com/Shopify/toxiproxy/v2 v2.12.0" in go_mod

    t0 = time.monotonic()
    [again] = tc.install(["toxiproxy"], Reporter())
    assert again.action == "cached" and time.monotonic() - t0 < 5

    with server.open("r+b") as fh:
        fh.truncate(1000)
    [rebuilt] = tc.install(["toxiproxy"], Reporter())
    assert rebuilt.action == "built"
    assert tc.status(["toxiproxy"])[0].present


@pytest.mark.slow
def test_a_failed_build_names_the_component_and_shows_the_go_error(tmp_path):
    lock_text = LOCK.path.read_text().replace('version = "v2.12.0"', 'version = "v2.999.0"')
    lock_path = tmp_path / "lock.toml"
    lock_path.write_text(lock_text)
    tc = Toolchain(tmp_path / "cache", load_lock(lock_path))
    with pytest.raises(HarnessError) as exc:
        tc.install(["toxiproxy"], Reporter())
    text = str(exc.value)
    assert "toolchain install failed for: toxiproxy" in text
    assert "toxiproxy: `go mod` failed" in text
    assert "v2.999.0" in text  # the tail of go's own error
    assert tc.cache.check(tc.spec("toxiproxy")).state == "missing"
    assert isinstance(exc.value, HarnessError) and not isinstance(exc.value, ToolchainError)


@pytest.mark.slow
def test_a_binary_that_does_not_run_as_expected_is_not_cached(tmp_path):
    lock_text = LOCK.path.read_text().replace('smoke_expect = "v2.12.0"',
                                              'smoke_expect = "v9.9.9"')
    lock_path = tmp_path / "lock.toml"
    lock_path.write_text(lock_text)
    tc = Toolchain(tmp_path / "cache", load_lock(lock_path))
    with pytest.raises(HarnessError, match=r"smoke test `toxiproxy-server --version` did not "
                                           r"print 'v9\.9\.9'"):
        tc.install(["toxiproxy"], Reporter())
    assert tc.cache.check(tc.spec("toxiproxy")).state == "missing"
