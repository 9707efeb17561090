"""The command line: bad input named (exit 2), the exit-code contract, -h/--version, names
from fixed sets, completion, and the --json documents."""

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.runtime.redact import MASK, REDACTOR


def harness(tmp_path, *args, env=None):
    full = {**os.environ, "HERACLES_STATE_DIR": str(tmp_path / "state"),
            "HERACLES_REGISTRY_DIR": str(tmp_path / "registry"),
            "XDG_STATE_HOME": str(tmp_path / "xdg-state"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=full,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args,message", [
    (["up", "--profile", "qa"], "Invalid value for '--profile': 'qa' is not one of"),
    (["up", "--components", "kube,vaultt"],
     "unknown component(s): vaultt; known: etcd, kube, node, vault, eso, alertmanager, "
     "prometheus"),
    (["up", "--bogus"], "No such option '--bogus'"),
    (["toolchain", "install", "--only", "kubectl"], "unknown toolchain component(s): kubectl"),
    (["drill", "run", "vault-restor"], "unknown drill 'vault-restor'; known: "
     "vault-leader-loss, vault-restore, "),
    (["apply"], "give manifest PATHS or --platform-repo PATH (one of them)"),
    (["drill", "run", "vault-restore", "--profile", "dev"],
     "drill 'vault-restore' needs profile staging or prod"),
])
def test_bad_input_is_named(tmp_path, args, message):
    res = harness(tmp_path, *args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "state" / "environment.json").exists()


def test_missing_binary_names_it_and_the_install_command(tmp_path):
    res = harness(tmp_path, "up", "--components", "kube",
                  env={"HERACLES_CACHE_DIR": str(tmp_path / "empty-cache")})
    assert res.returncode == 2
    assert "etcd v3.6.16 is missing (not built)" in res.stderr
    assert "kubernetes v1.34.4 is missing" in res.stderr
    assert "run: harness toolchain install --only etcd,kubernetes,kwok" in res.stderr
    assert not (tmp_path / "state" / "environment.json").exists()


def test_state_dir_from_an_incompatible_version_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "environment.json").write_text(json.dumps({"schema": 99, "status": "up"}))
    res = harness(tmp_path, "up")
    assert res.returncode == 2
    assert "incompatible heracles-harness (state schema 99" in res.stderr
    assert "--state-dir" in res.stderr


def test_a_foreign_non_empty_directory_is_not_taken_as_state(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "precious.txt").write_text("user data")
    res = harness(tmp_path, "up")
    assert res.returncode == 2
    assert "is not a heracles-harness state directory" in res.stderr
    assert (state / "precious.txt").read_text() == "user data"


def test_status_and_down_of_an_absent_environment(tmp_path):
    st = harness(tmp_path, "status", "--json")
    assert st.returncode == 1 and json.loads(st.stdout)["status"] == "absent"
    assert "no environment in" in st.stderr
    down = harness(tmp_path, "down")
    assert down.returncode == 0 and "no environment" in down.stderr
    env = harness(tmp_path, "env")
    assert env.returncode == 2 and "no running environment" in env.stderr


def test_toolchain_status_json_lists_every_component(tmp_path):
    res = harness(tmp_path, "toolchain", "status", "--json",
                  env={"HERACLES_CACHE_DIR": str(tmp_path / "empty")})
    data = json.loads(res.stdout)
    names = {c["name"]: c for c in data["components"]}
    assert {"etcd", "kubernetes", "kwok", "openbao", "prometheus"} <= set(names)
    assert names["etcd"]["present"] is False and names["etcd"]["state"] == "missing"
    assert res.returncode == 1  # something is missing


@pytest.mark.toolchain
def test_kind_plan_renders_offline_and_prints_the_plan(tmp_path):
    run = harness(tmp_path, "backend", "kind-plan", "--out", str(tmp_path / "kind"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "kind" / "cluster.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "kind" / "rendered").iterdir()) == [
        "argocd.yaml", "external-secrets.yaml", "prometheus.yaml", "vault.yaml"]
    assert "quay.io/openbao/openbao:2.7.2" in run.stdout
    assert ". create the cluster" in run.stdout and "helm install argocd" in run.stdout


@pytest.mark.toolchain
def test_kind_up_that_cannot_run_here_says_exactly_why_and_leaves_nothing(tmp_path):
    """No Docker answers and the official node image is asked for: as root the private
    daemon would reach no registry, otherwise there is no daemon to start — either way
    exit 2 with the reason, before anything starts."""
    run = harness(tmp_path, "backend", "kind-up", "--kind-image", "official",
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert run.returncode == 2, run.stderr
    assert "the kind backend cannot run on this machine: " in run.stderr
    reason = ("no registry is reachable from the private Docker daemon" if os.geteuid() == 0
              else "starting a private one needs root")
    assert reason in " ".join(run.stderr.split())
    assert not (tmp_path / "state" / "kind" / "kind.json").exists()
    assert not list((tmp_path / "registry").glob("runs/*"))


def test_an_existing_backend_config_with_a_typo_is_named(tmp_path):
    cfg = tmp_path / "existing.yaml"
    cfg.write_text("vault: {address: http://127.0.0.1:1}\nprometheus_url: x\n")
    run = harness(tmp_path, "backend", "check", str(cfg))
    assert run.returncode == 2
    assert f"existing-backend config {cfg}: unknown key(s) prometheus_url" in run.stderr


def test_vault_values_check_exits_1_on_what_cannot_run(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text('server:\n  standalone:\n    config: |\n      storage "file" {\n'
                      '        path = "/vault/data"\n      }\n')
    run = harness(tmp_path, "vault-values", str(values), "--profile", "prod")
    assert run.returncode == 1
    assert '[cannot] storage "file"' in run.stdout


# Issue 17: the CLI's contract (version, -h, exit codes, choices, completion, --json) -----

HARNESS_BIN = Path(sys.executable).with_name("harness")
SECRET = "hvs-not-a-real-token-4242"


def cli(tmp_path, *args, env=None):
    """In-process run (CliRunner), so a test can monkeypatch the library under a command."""
    full = {"HERACLES_STATE_DIR": str(tmp_path / "state"),
            "HERACLES_REGISTRY_DIR": str(tmp_path / "registry"),
            "XDG_STATE_HOME": str(tmp_path / "xdg-state"), **(env or {})}
    return CliRunner().invoke(main, list(args), env=full)


def test_version_is_the_package_version(tmp_path):
    res = harness(tmp_path, "--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"harness {version('heracles-harness')}"


@pytest.mark.parametrize("args", [["-h"], ["status", "-h"], ["backend", "check", "-h"],
                                  ["toolchain", "-h"]])
def test_dash_h_is_help_everywhere(tmp_path, args):
    res = cli(tmp_path, *args)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("Usage: ")
    assert res.stdout == cli(tmp_path, *args[:-1], "--help").stdout


def test_root_help_documents_the_exit_codes_and_completion(tmp_path):
    text = " ".join(cli(tmp_path, "-h").stdout.split())
    for line in ("0 success", "1 a check failed", "2 bad input", "3 internal error",
                 "_HARNESS_COMPLETE=bash_source harness"):
        assert line in text


def test_an_internal_error_exits_3_logs_the_traceback_redacted(tmp_path, monkeypatch):
    from harness.backends.local.environment import LocalEnvironment

    REDACTOR.add(SECRET)

    def broken(self):
        raise RuntimeError(f"unexpected state, token {SECRET} in hand")

    monkeypatch.setattr(LocalEnvironment, "status", broken)
    res = cli(tmp_path, "status")
    assert res.exit_code == 3, res.output
    assert res.stderr.count("\n") == 1, res.stderr  # one line, no traceback
    assert res.stderr.startswith("internal error: RuntimeError: unexpected state, token "
                                 f"{MASK} in hand — this is a bug; the traceback is in ")
    logs = list((tmp_path / "xdg-state" / "heracles-harness" / "logs").glob("internal-*.log"))
    assert len(logs) == 1 and str(logs[0]) in res.stderr
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text
    assert SECRET not in text + res.stderr + res.stdout and MASK in text
    assert logs[0].stat().st_mode & 0o077 == 0


def test_harness_errors_and_usage_errors_stay_exit_2_and_interrupts_as_before(
        tmp_path, monkeypatch):
    from harness.backends.local.environment import LocalEnvironment

    assert cli(tmp_path, "status", "--bogus").exit_code == 2
    assert cli(tmp_path, "up", "--profile", "qa").exit_code == 2

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalEnvironment, "status", interrupted)
    res = cli(tmp_path, "status")
    assert res.exit_code == 1 and "Aborted!" in res.stderr  # click's own handling
    assert not (tmp_path / "xdg-state").exists()  # not logged as a bug


def test_status_of_an_empty_state_dir_exits_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(tmp_path, "status", "--state-dir", str(empty))
    assert res.exit_code == 1, res.output
    assert f"no environment in {empty}" in res.stderr


@pytest.mark.parametrize("backend", ["pods", "kind"])
def test_status_of_no_chart_backend_exits_1_with_a_document(tmp_path, backend):
    res = cli(tmp_path, "status", "--backend", backend, "--json")
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout) == {"backend": backend, "profile": None, "running": False,
                                      "pods": []}
    assert f"no running {backend} environment in " in res.stderr


@pytest.mark.parametrize("args,option,bad,known", [
    (["up", "--components", "kube", "--components", "etcd,vaultt"], "--components",
     "unknown component(s): vaultt", "known: etcd, kube, node, vault"),
    (["images", "build", "--only", "openbao,nope,zilch"], "--only",
     "unknown image(s): nope, zilch", "known: "),
    (["toolchain", "status", "--only", "etcd,kubectl"], "--only",
     "unknown toolchain component(s): kubectl", "known: etcd, kubernetes"),
])
def test_unknown_names_are_named_with_the_known_ones(tmp_path, args, option, bad, known):
    res = cli(tmp_path, *args)
    assert res.exit_code == 2
    assert f"Invalid value for '{option}': {bad}; {known}" in res.stderr
    assert not (tmp_path / "state").exists()  # refused while parsing: nothing started


def test_name_lists_accept_commas_and_repeats(monkeypatch):
    from harness.cli.common import COMPONENT_NAMES, components_option

    values = [COMPONENT_NAMES.convert(v, None, None) for v in ("kube, vault", "eso")]
    assert components_option(values) == ["kube", "vault", "eso"]
    assert components_option(()) is None


def completions(args, incomplete):
    from click.shell_completion import ShellComplete

    comp = ShellComplete(main, {}, "harness", "_HARNESS_COMPLETE")
    return [c.value for c in comp.get_completions(args, incomplete)]


def test_completion_offers_the_names():
    assert completions(["up", "--components"], "") == [
        "etcd", "kube", "node", "vault", "eso", "alertmanager", "prometheus", "netfault",
        "git", "argocd", "backup", "s3", "db"]
    assert completions(["up", "--components"], "kube,e") == ["kube,etcd", "kube,eso"]
    assert completions(["up", "--components"], "etcd,kube,") == [
        f"etcd,kube,{n}" for n in ("node", "vault", "eso", "alertmanager", "prometheus",
                                   "netfault", "git", "argocd", "backup", "s3", "db")]
    assert "openbao" in completions(["images", "build", "--only"], "open")
    assert completions(["toolchain", "install", "--only"], "kubernetes") == [
        "kubernetes", "kubernetes-node"]
    assert completions(["up", "--backend"], "k") == ["kind"]
    assert completions(["drill", "run"], "db-") == ["db-pitr", "db-region-loss"]
    assert completions(["drill", "run"], "vault-") == [
        "vault-leader-loss", "vault-restore", "vault-snapshot-restore"]
    assert "bootstrap" in completions(["gitops"], "")


@pytest.mark.skipif(not HARNESS_BIN.exists(), reason="the harness script is not installed")
def test_bash_completion_through_the_installed_script(tmp_path):
    env = {**os.environ, "_HARNESS_COMPLETE": "bash_complete",
           "COMP_WORDS": "harness up --components kube,va", "COMP_CWORD": "3"}
    res = subprocess.run([str(HARNESS_BIN)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["plain,kube,vault"]
    script = subprocess.run([str(HARNESS_BIN)], env={**os.environ,
                            "_HARNESS_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60)
    assert "_harness_completion" in script.stdout


def test_emit_json_redacts_values_and_stays_json(capsys):
    from harness.cli.common import emit_json

    REDACTOR.add(SECRET)
    emit_json({"token": SECRET, "note": f"token: {SECRET}", "path": Path("/x"),
               "items": [{"password": "p"}, 1, None]})
    doc = json.loads(capsys.readouterr().out)
    assert doc["token"] == MASK and SECRET not in doc["note"] and doc["path"] == "/x"
    assert doc["items"] == [{"password": "p"}, 1, None]


def existing_config(tmp_path, kubeconfig):
    cfg = tmp_path / "existing.yaml"
    cfg.write_text(f"kubeconfig: {kubeconfig}\nvault: {{address: http://127.0.0.1:1}}\n"
                   "prometheus: http://127.0.0.1:2\neso: {metrics: [http://127.0.0.1:3]}\n")
    return cfg


def test_backend_check_json_when_the_cluster_is_not_there(tmp_path):
    cfg = existing_config(tmp_path, tmp_path / "no-kubeconfig")
    res = cli(tmp_path, "backend", "check", str(cfg), "--json")
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and "does not exist" in doc["error"]
    assert doc["capabilities"]["prometheus"] is True
    assert doc["capabilities"]["pod-faults"] is False
    assert res.stderr.startswith("error: ")


def test_backend_check_json_when_everything_answers(tmp_path, monkeypatch):
    from harness.backends.existing import ExistingEnvironment, RemotePrometheus

    def up(self):
        self.components = {"prometheus": RemotePrometheus("http://127.0.0.1:2/")}
        return self

    monkeypatch.setattr(ExistingEnvironment, "up", up)
    cfg = existing_config(tmp_path, tmp_path / "kubeconfig")
    res = cli(tmp_path, "backend", "check", str(cfg), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is True and doc["error"] is None and doc["config"] == str(cfg)
    assert doc["components"] == {"prometheus": "http://127.0.0.1:2"}
    assert doc["capabilities"]["eso-metrics"] is True


def fake_bootstrap(monkeypatch, outcome):
    from harness.backends.local.environment import LocalEnvironment
    from harness.gitops import deploy

    monkeypatch.setattr(LocalEnvironment, "attach", lambda self: self)

    def bootstrap(platform, env, timeout, log):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(deploy, "bootstrap", bootstrap)


def test_gitops_bootstrap_json(tmp_path, monkeypatch):
    from harness.gitops.deploy import Bootstrapped

    apps = {"root": {"sync": "Synced", "health": "Healthy", "revision": "abc"}}
    fake_bootstrap(monkeypatch, Bootstrapped(Path("/repo/app-of-apps.yaml"), 3.5, apps))
    res = cli(tmp_path, "gitops", "bootstrap", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"ok": True, "app_of_apps": "/repo/app-of-apps.yaml",
                                      "seconds": 3.5, "applications": apps, "error": None}
    assert "Synced and Healthy in 3.5s" in res.stderr


def test_gitops_bootstrap_json_not_synced_exits_1(tmp_path, monkeypatch):
    from harness.gitops.deploy import NotSynced

    REDACTOR.add(SECRET)
    fake_bootstrap(monkeypatch, NotSynced(f"root: OutOfSync (token {SECRET})"))
    res = cli(tmp_path, "gitops", "bootstrap", "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["error"] == f"root: OutOfSync (token {MASK})"


def test_toolchain_install_json(tmp_path, monkeypatch):
    from harness.toolchain import InstallResult, Toolchain

    def install(self, only, reporter, force):
        return [InstallResult(n, "v1", "cached", 0.1) for n in only]

    monkeypatch.setattr(Toolchain, "install", install)
    res = cli(tmp_path, "toolchain", "install", "--only", "etcd,kwok", "--json",
              env={"HERACLES_CACHE_DIR": str(tmp_path / "cache")})
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["cache_dir"] == str(tmp_path / "cache")
    assert [(c["name"], c["action"]) for c in doc["components"]] == [
        ("etcd", "cached"), ("kwok", "cached")]


@pytest.mark.toolchain
def test_kind_plan_json(tmp_path):
    run = harness(tmp_path, "backend", "kind-plan", "--out", str(tmp_path / "kind"), "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["dir"] == str(tmp_path / "kind")
    assert set(doc["rendered"]) == {"argocd", "external-secrets", "prometheus", "vault"}
    assert "quay.io/openbao/openbao:2.7.2" in doc["images"]
    assert any(s["argv"][:3] == ["helm", "install", "argocd"] or "argocd" in s["argv"]
               for s in doc["plan"] if s["argv"])


def test_rules_test_json(tmp_path):
    from harness.settings import Settings
    from harness.toolchain import Toolchain

    if Toolchain(Settings().cache_dir).problem("prometheus"):
        pytest.skip("promtool is not in the toolchain cache")
    res = harness(tmp_path, "rules", "test", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc and all(r["status"] == "passed" for r in doc)
    assert {"group", "rule", "source", "status", "detail", "seconds"} == set(doc[0])
