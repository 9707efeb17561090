"""The kind backend against real components where this machine allows: its rendered
charts are accepted by a real v1.34 apiserver (server-side dry run, with the CRDs at the
toolchain's versions), and the portable suites run with `--harness-backend kind` either
pass on a machine with Docker and the images, or are skipped with the precise reason."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from kubernetes import client

from harness.backends.kind import KindPlatform

ROOT = Path(__file__).resolve().parents[1]


def test_the_rendered_charts_pass_a_server_side_dry_run(platform, kube, tmp_path):
    kind = KindPlatform(platform.settings.with_(state_dir=tmp_path))
    rendered = kind.render(tmp_path / "kind")
    for f in kind.crd_files():
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(f))
    made = []
    for chart in kind.charts:
        if kube.absent(kube.core.read_namespace, chart.namespace):
            kube.core.create_namespace(client.V1Namespace(
                metadata=client.V1ObjectMeta(name=chart.namespace)))
            made.append(chart.namespace)
    try:
        for chart in kind.charts:
            groups: dict[str, list[dict]] = {}  # as helm does: no namespace -> the release's
            for doc in rendered["rendered"][chart.release]:
                ns = doc.get("metadata", {}).get("namespace") or chart.namespace
                groups.setdefault(ns, []).append(doc)
            for ns, docs in groups.items():
                path = tmp_path / f"{chart.release}-{ns}.yaml"
                path.write_text(yaml.safe_dump_all(docs))
                run = kube.kubectl("apply", "--server-side", "--dry-run=server",
                                   "--force-conflicts", "--field-manager=heracles-kind-check",
                                   "-n", ns, "-f", str(path), check=False)
                assert run.returncode == 0, f"{chart.release}: {run.stderr[-3000:]}"
                assert run.stdout.count("(server dry run)") == len(docs)
    finally:
        for ns in made:
            kube.core.delete_namespace(ns)


def test_portable_suites_on_the_kind_backend_pass_or_skip_with_the_reason(platform,
                                                                          tmp_path):
    junit = tmp_path / "junit.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "--harness-backend", "kind", f"--junitxml={junit}",
         "scenarios/test_secret_sync.py"], cwd=ROOT, capture_output=True, text=True,
        timeout=3600)
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-20:])
    assert run.returncode == 0, tail
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", 0)) >= 5
    skipped = [s.get("message", "") for s in suite.iter("skipped")]
    if skipped:  # no Docker or no images here: every test says exactly why
        assert len(skipped) == int(suite.get("tests", 0)), tail
        assert all(m.startswith("kind backend: ") and (
            "Docker daemon is not reachable" in m or "no docker CLI" in m
            or "not in the local Docker and no registry" in m) for m in skipped), skipped
