"""Loading and rewriting manifests (no cluster needed)."""

from pathlib import Path

import pytest

from harness.clients.manifests import ManifestError, load, load_cached, rewrite

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gitops" / "secrets"


def test_the_spec_fixtures_load_with_their_lines():
    docs = load([FIXTURES])
    kinds = sorted((d.kind, d.name) for d in docs)
    assert kinds == [("ClusterSecretStore", "vault-cluster-backend"),
                     ("ExternalSecret", "harbor-credentials"),
                     ("ExternalSecret", "postgres-credentials"),
                     ("ExternalSecret", "redis-credentials")]
    postgres = next(d for d in docs if d.name == "postgres-credentials")
    assert postgres.api_version == "external-secrets.io/v1beta1"
    assert postgres.ref.endswith("postgres-credentials.yaml:4)")


def test_yaml_errors_name_file_and_line(tmp_path):
    good = tmp_path / "a.yaml"
    good.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n")
    bad = tmp_path / "b.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n")
    with pytest.raises(ManifestError) as exc:
        load([tmp_path])
    assert f"{bad}:" in str(exc.value) and "YAML error" in str(exc.value)
    assert "nothing applied" in str(exc.value)


def test_non_mapping_documents_and_missing_paths_are_named(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ManifestError, match="a document must be a mapping"):
        load([f])
    with pytest.raises(ManifestError, match="no such file or directory"):
        load([tmp_path / "missing.yaml"])


def test_rewrite_maps_in_cluster_addresses_without_touching_the_input():
    docs = load([FIXTURES / "cluster-secret-store.yaml"])
    local = rewrite(docs, {"http://vault.vault.svc.cluster.local:8200": "http://127.0.0.1:1"})
    server = local[0].obj["spec"]["provider"]["vault"]["server"]
    assert server == "http://127.0.0.1:1"
    assert local[0].rewrites == [("http://vault.vault.svc.cluster.local:8200",
                                  "http://127.0.0.1:1")]
    assert docs[0].obj["spec"]["provider"]["vault"]["server"] == \
        "http://vault.vault.svc.cluster.local:8200"
    assert "vault.vault.svc" in (FIXTURES / "cluster-secret-store.yaml").read_text()


@pytest.mark.parametrize("body,message", [
    ("kind: null\napiVersion: v1\n", None),  # no kind: reported by validate(), not here
    ("kind: [1]\n", "kind must be a string"),
    ("kind: ConfigMap\nmetadata: [a]\n", "metadata must be a mapping"),
    ("kind: List\nitems: [1, 2]\n", "List.items must be a list of mappings"),
])
def test_malformed_documents_are_reported_not_crashed_on(tmp_path, body, message):
    f = tmp_path / "m.yaml"
    f.write_text(body)
    if message is None:
        assert load([f])[0].kind == ""
        return
    with pytest.raises(ManifestError, match=message):
        load([f])


def test_load_cached_parses_a_file_once_per_content(tmp_path):
    """The toolchain's CRD bundles are read as JSON after the first parse; a changed
    file is parsed again, and what JSON cannot give back (a YAML date) is not cached."""
    src, cache = tmp_path / "crds.yaml", tmp_path / "parsed"
    src.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n"
                   "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap,"
                   " metadata: {name: b}}\n")
    first = load_cached([src], cache)
    assert [(d.name, d.line, d.source) for d in first] == \
        [(d.name, d.line, d.source) for d in load([src])] == \
        [("a", 1, str(src)), ("b", 6, str(src))]
    [kept] = cache.glob("*.json")
    kept.write_text(kept.read_text().replace('"a"', '"from-the-cache"'))
    assert load_cached([src], cache)[0].name == "from-the-cache"  # read, not parsed
    src.write_text(src.read_text().replace("name: a", "name: c"))
    assert load_cached([src], cache)[0].name == "c"  # new content, new parse
    dated = tmp_path / "dated.yaml"
    dated.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n"
                     "data: {when: 2026-12-03}\n")
    before = set(cache.glob("*.json"))
    assert str(load_cached([dated], cache)[0].obj["data"]["when"]) == "2026-12-03"
    assert set(cache.glob("*.json")) == before


def test_load_cached_without_a_writable_cache_still_loads(tmp_path):
    src = tmp_path / "crds.yaml"
    src.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n")
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert [d.name for d in load_cached([src], blocked / "parsed")] == ["a"]
