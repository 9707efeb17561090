"""The repository report (offline render and findings, no environment): per Application
its render and findings, per ExternalSecret and rule a status, the Vault findings — as
JSON, Markdown and an HTML page checked in a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.gitops import repo_report
from harness.gitops.platform_repo import RepoScan, scan
from harness.runtime.redact import MASK, REDACTOR
from harness.settings import Settings
from harness.toolchain import Toolchain

SAMPLES = Settings().fixtures_dir.resolve() / "samples"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = Toolchain(Settings().cache_dir).binary("kubernetes", "kubectl")
    if not path.exists():
        pytest.skip("kubectl is not built yet (harness toolchain install)")
    return str(path)


@pytest.fixture(scope="module")
def broken(kubectl: str) -> RepoScan:
    return scan(SAMPLES / "broken-root-kustomization", kubectl)


@pytest.fixture(scope="module")
def vault_app(kubectl: str) -> RepoScan:
    if Toolchain(Settings().cache_dir).problem("helm"):
        pytest.skip("helm is not built yet (harness toolchain install --only helm)")
    return scan(SAMPLES / "vault-app", kubectl)


def app(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in report["applications"] if a["name"] == name)


def test_offline_report_of_a_repo_whose_root_does_not_build(broken):
    r = repo_report.build(broken, "dev", "dev")
    assert r["mode"] == "offline"
    assert r["summary"] | {"rules": None} == {
        "applications": 6, "rendered": 4, "failed": 1, "unservable": 1,
        "platform_components": 0, "applicationsets": 1, "external_secrets": 1,
        "external_secrets_synced": 0, "rules": None, "vault_cannot": 0, "errors": 2}
    assert r["summary"]["rules"]["not-simulated"] == 1  # kube_* offline: not simulated
    assert r["summary"]["rules"]["unchecked"] == 1  # needs live metrics
    assert [f["what"] for f in r["repository_findings"] if f["level"] == "error"] == [
        "kustomization ."]
    assert app(r, "legacy")["status"] == "failed"
    assert app(r, "team-alpha")["generated_by"] == "ApplicationSet/teams (apps/teams.yaml:2)"
    [es] = r["external_secrets"]
    assert (es["name"], es["application"], es["status"]) == ("ledger-db", "ledger-dev",
                                                             "offline")
    problems = repo_report.failed(r)
    assert len(problems) == 2 and problems[0].startswith("Application legacy (apps/legacy")


def test_offline_report_reads_the_vault_application(vault_app):
    """Done-when (b), --platform-repo side: the Application's inline values are the
    repository's Vault configuration, judged against staging (dev runs a dev server)."""
    r = repo_report.build(vault_app, "dev", "dev")
    [v] = r["vault"]
    assert (v["source"], v["application"], v["mode"], v["judged_against"]) == (
        "argocd/vault.yaml", "vault", "ha-raft", "staging")
    assert v["run_with"].endswith("--vault-values "
                                  f"{SAMPLES / 'vault-app' / 'argocd' / 'vault.yaml'}")
    assert {f["what"]: f["level"] for f in v["findings"]}['seal "gcpckms"'] == "adapted"
    assert app(r, "vault")["platform"] == "Vault"
    assert "the harness runs Vault itself" in app(r, "vault")["applied"]


def test_the_values_file_of_a_tree_is_its_vault_configuration(kubectl):
    r = repo_report.build(scan(SAMPLES / "kustomize-platform", kubectl), "dev", "prod")
    [v] = r["vault"]
    assert (v["source"], v["application"], v["judged_against"]) == (
        "helm/vault-values.yaml", None, "prod")


def test_applied_report_says_synced_or_why_not(broken):
    live = repo_report.LiveState(
        applications={"ledger-dev": {"sync": "Synced", "health": "Healthy", "messages": []},
                      "legacy": {"sync": "Unknown", "health": "Healthy",
                                 "messages": ["ComparisonError: kustomize build failed"]}},
        external_secrets={("ledger-dev", "ledger-db"): {
            "status": "error", "reason": "SecretSyncedError",
            "why": "could not get secret data from provider"}},
        metrics={"up", "externalsecret_status_condition"}, profile="dev")
    r = repo_report.build(broken, "dev", "dev", live)
    assert r["mode"] == "applied"
    assert (app(r, "ledger-dev")["sync"], app(r, "ledger-dev")["health"]) == ("Synced",
                                                                             "Healthy")
    assert app(r, "legacy")["messages"] == ["ComparisonError: kustomize build failed"]
    assert app(r, "ledger-config")["applied"] == "not applied"  # no live state for it
    assert r["external_secrets"][0]["why"] == "could not get secret data from provider"
    statuses = {x["rule"]: x["status"] for x in r["rules"]}
    assert statuses == {"LedgerSecretNotReady": "ok",
                        "LedgerDeploymentUnavailable": "not-simulated"}
    dead = repo_report.build(broken, "dev", "dev", repo_report.LiveState(metrics={"up"}))
    assert {x["rule"]: x["status"] for x in dead["rules"]}["LedgerSecretNotReady"] == "dead"


def test_files_are_written_redacted(broken, tmp_path):
    secret = "s3cr3t-value-for-the-report"
    REDACTOR.add(secret)
    r = repo_report.build(broken, "dev", "dev")
    r["repository_findings"].append({"level": "info", "what": "x", "message": secret})
    files = repo_report.write(r, tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["report.html", "report.json",
                                                      "report.md"]
    for p in files.values():
        text = p.read_text()
        assert secret not in text and MASK in text
    assert json.loads(files["json"].read_text())["name"] == "broken-root-kustomization"
    md = files["md"].read_text()
    assert "### `legacy` — failed" in md and "| error | kustomization . |" in md


class _Sections(HTMLParser):
    """The rendered DOM's Application sections: name -> their text."""

    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[str, str] = {}
        self.vault: list[str] = []
        self._open: str | None = None
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-app"):
            self._open, self._depth, self._text = str(a["data-app"]), 0, []
        elif tag == "section" and "data-source" in a:
            self.vault.append(str(a["data-source"]))
        if self._open and tag == "section":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == "section":
            self._depth -= 1
            if self._depth == 0:
                self.apps[self._open] = " ".join("".join(self._text).split())
                self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The DOM a real browser builds from the page (Debian's chromium, headless)."""
    out = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs "
                                                  "Debian's `chromium` package)")
def test_the_html_report_shows_every_application_with_its_findings(broken, vault_app,
                                                                    tmp_path):
    for found, name in ((broken, "broken"), (vault_app, "vault")):
        report = repo_report.build(found, "dev", "dev")
        page = repo_report.write(report, tmp_path / name)["html"]
        dom = _Sections()
        dom.feed(dump_dom(page, tmp_path))
        assert sorted(dom.apps) == sorted(a["name"] for a in report["applications"])
        for a in report["applications"]:
            text = dom.apps[a["name"]]
            assert a["status"] in text and a["file"] in text
            for f in a["findings"]:
                assert " ".join(f["message"].split()) in text, (a["name"], f)
        if name == "broken":
            assert "kustomize build legacy failed" in dom.apps["legacy"]
            assert "grafana 8.4.0 from https://grafana.github.io/helm-charts" in \
                dom.apps["grafana"]
            assert "no findings" in dom.apps["ledger-dev"]
        else:
            assert dom.vault == ["argocd/vault.yaml"]
            assert "platform component: Vault" in dom.apps["vault"]


@pytest.mark.toolchain
def test_dry_run_writes_the_report_without_an_environment(tmp_path):
    from harness.cli import main

    if shutil.which("git") is None:  # pragma: no cover - the suites need git anyway
        pytest.skip("git is missing")
    env = {"HERACLES_STATE_DIR": str(tmp_path / "state")}
    broken = CliRunner().invoke(main, [
        "apply", "--platform-repo", str(SAMPLES / "broken-root-kustomization"), "--dry-run",
        "--report", str(tmp_path / "broken")], env=env)
    assert broken.exit_code == 1, broken.output  # Argo CD could not render legacy
    assert (tmp_path / "broken" / "report.html").exists()
    assert "2 error(s)" in broken.output
    ok = CliRunner().invoke(main, ["apply", "--platform-repo", str(SAMPLES / "vault-app"),
                                   "--dry-run"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "Vault argocd/vault.yaml: ha-raft" in ok.output
    refused = CliRunner().invoke(main, ["apply", str(SAMPLES), "--dry-run"], env=env)
    assert refused.exit_code == 2 and "are for --platform-repo" in refused.output
