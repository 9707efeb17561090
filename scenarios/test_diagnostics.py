"""A failed scenario carries diagnostics — and no secret value, token or key in them."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from harness.runtime.redact import MASK, REDACTOR
from harness.testing import diagnostics

pytest_plugins = ["pytester"]

SEEDED = "secure-password"  # the spec's seed value for secret/postgres/main


def test_diagnostics_show_state_and_events_but_never_secret_values(platform, kube, namespace):
    REDACTOR.add(SEEDED)
    kube.core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="postgres-credentials"),
        string_data={"password": SEEDED}))
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXZhbHVl"
    kube.core.create_namespaced_event(namespace, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="leaky"),
        involved_object=client.V1ObjectReference(kind="Secret", name="postgres-credentials",
                                                 namespace=namespace),
        reason="Leak", message=f"synced password {SEEDED} with token {token}", type="Warning"))
    text = diagnostics.collect(platform, kube, namespace)
    assert "kube/kube-apiserver: ready" in text
    assert "-- log tail etcd --" in text
    assert "postgres-credentials" in text  # the object is listed...
    assert "Leak" in text and MASK in text  # ...the event is there, its secrets are not
    for leaked in (SEEDED, base64.b64encode(SEEDED.encode()).decode(), token):
        assert leaked not in text


@pytest.mark.slow
def test_a_failing_scenario_gets_a_redacted_diagnostics_section(platform, pytester,
                                                                monkeypatch):
    settings = platform.settings  # pytester moves HOME: keep our cache and registry
    monkeypatch.setenv("HERACLES_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("HERACLES_REGISTRY_DIR", str(settings.registry_dir))
    pytester.makepyfile(test_inner=f"""
        from harness.runtime.redact import REDACTOR

        def test_fails(platform, kube, namespace):
            REDACTOR.add("{SEEDED}")
            print("about to fail with {SEEDED}")
            assert kube.kubectl("get", "nodes").returncode == 1, "{SEEDED} should not leak"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--harness-components=kube")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "heracles diagnostics" in out
    assert "kube/kube-apiserver: ready" in out
    assert "recent events" in out
    # pytest's own assertion text is the test author's business; our section is clean:
    section = out.split("heracles diagnostics", 1)[1]
    assert SEEDED not in section.split("short test summary")[0]
