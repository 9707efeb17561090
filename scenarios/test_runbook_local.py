"""The spec's runbook on the local backend, as close to written as it can be: `vault ...`
after `eval "$(harness env)"`, `harness logs` for `kubectl logs [-f]`, a new Vault path
granted to ESO (`harness eso grant`), and a push reaching Argo CD at once through the
Git server's webhook instead of its 180 s poll. docs/runbook-local.md translates each
command; this module is what keeps that table true.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from harness import eventually
from harness.cli import main
from harness.clients.argocd import Applications
from harness.clients.git import Workspace
from harness.runtime.redact import MASK, REDACTOR

from .helpers import external_secret, synced_secret

BOUND = 30.0  # seconds: push -> Synced/Secret with the webhook (Argo CD's poll: 180 s)


def harness(platform: Any, *args: str) -> Any:
    """`harness --state-dir <the session's> ARGS`, in-process."""
    result = CliRunner().invoke(main, ["--state-dir", str(platform.settings.state_dir),
                                       *args], catch_exceptions=False)
    return result


def adopt_recorded_pids(platform: Any) -> None:
    """The session's environment object takes the pids the state file holds now: a
    command run beside it (`harness restart`) replaced processes it knows by pid."""
    from harness.backends.local.record import EnvironmentRecord

    record = EnvironmentRecord.load(platform.state)
    for proc in platform.all_processes():
        if (rec := record.processes.get(proc.name)) is not None:
            proc.pid, proc.create_time = rec.get("pid"), rec.get("create_time")


def shell(platform: Any, script: str) -> subprocess.CompletedProcess[str]:
    """`eval "$(harness env)"` then `script` in bash, as an operator's terminal."""
    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.settings.state_dir)}
    for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "KUBECONFIG"):
        env.pop(var, None)
    prelude = f'eval "$({sys.executable} -m harness.cli env)" || exit 97\n'
    return subprocess.run(["bash", "-c", prelude + script], env=env, capture_output=True,
                          text=True, timeout=120)


# ---- vault on PATH ----------------------------------------------------------------------------

def test_vault_commands_work_as_typed_after_eval_harness_env(platform, vault, namespace):
    value = f"rb-{namespace}-kv"
    REDACTOR.add(value)
    done = shell(platform, f"""
        set -e
        command -v vault
        vault status -format=json
        vault kv put secret/{namespace}/runbook value={value} >/dev/null
        vault kv get -field=value secret/{namespace}/runbook
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    where, *rest = done.stdout.splitlines()
    assert where == str(platform.settings.state_dir / "bin" / "vault")
    status = json.loads("\n".join(rest[:-1]))
    assert status["initialized"] is True and status["sealed"] is False
    assert rest[-1] == value
    assert vault.kv_get(f"{namespace}/runbook") == {"value": value}
    vault.kv_delete_tree(namespace)


def test_harness_env_prints_no_secret(platform):
    exports = harness(platform, "env").output
    token = platform.vault.root_token_file.read_text().strip()
    assert token not in exports and 'VAULT_TOKEN="$(cat ' in exports
    assert f"export PATH={platform.settings.state_dir / 'bin'}:$PATH" in exports
    assert "export ARGOCD_SERVER=127.0.0.1:" in exports


# ---- harness logs -----------------------------------------------------------------------------

def test_harness_logs_tails_a_component_by_its_kubectl_name(platform):
    tail = harness(platform, "logs", "external-secrets", "-n", "5")
    assert tail.exit_code == 0, tail.output
    assert 0 < len(tail.output.splitlines()) <= 5
    # ESO keeps writing between two reads, so compare whole files: what the process name
    # showed first must open what the kubectl name shows later (its last line may be partial).
    by_process = harness(platform, "logs", "external-secrets", "-n", "1000000").output
    kubectl_style = harness(platform, "logs", "deployment/external-secrets", "-n", "1000000")
    assert kubectl_style.exit_code == 0, kubectl_style.output
    earlier = by_process.splitlines()[:-1]
    assert earlier and kubectl_style.output.splitlines()[: len(earlier)] == earlier
    everything = harness(platform, "logs", "argocd", "-n", "1").output
    assert "==> argocd-server (" in everything and "==> argocd-repo-server (" in everything


def test_harness_logs_refuses_an_unknown_name_listing_the_valid_ones(platform):
    result = harness(platform, "logs", "nginx-ingress")
    assert result.exit_code == 2
    assert "choose one of:" in result.output and "external-secrets" in result.output


def test_harness_logs_completes_the_running_environments_names(platform):
    env = {**os.environ, "_HARNESS_COMPLETE": "bash_complete",
           "COMP_WORDS": f"harness logs --state-dir {platform.state.root} ext",
           "COMP_CWORD": "4"}
    res = subprocess.run([str(Path(sys.executable).with_name("harness"))], env=env,
                         capture_output=True, text=True, timeout=60)
    assert "plain,external-secrets" in res.stdout.splitlines(), res.stdout + res.stderr


def test_harness_logs_follow_prints_new_lines_redacted_and_stops_on_ctrl_c(platform):
    """`harness logs git-server -f`: requests arrive while it follows; the token in
    their URL (shaped as a Vault token, masked by its shape: a real one would sit in the
    raw log file, which the redaction sweep rightly calls a leak) is masked; Ctrl-C ends
    it, status 0."""
    import secrets as _secrets

    token = "s." + _secrets.token_hex(12)
    env = {**os.environ, "HERACLES_STATE_DIR": str(platform.settings.state_dir)}
    # Ctrl-C as a terminal delivers it: to a process whose SIGINT is not ignored. A
    # pytest started in the background by a shell without job control (`cmd &` in a
    # script, as CI may) ignores SIGINT, a child inherits that across exec, and Python
    # then never raises KeyboardInterrupt (seen here: the wait below timed out). A
    # handler in the parent is reset to the default by exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "logs", "git-server",
                                 "-f", "-n", "0"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    printed: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            printed.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    marker = f"follow-{time.time_ns()}"
    try:
        def shown() -> bool:
            # the follower starts after its imports: a request per try until one shows
            urllib.request.urlopen(f"{platform.git.address}/healthz?{marker}&probe={token}",
                                   timeout=5).read()
            assert proc.poll() is None, "harness logs -f exited"
            return any(marker in line for line in printed)

        eventually(shown, timeout=30, interval=0.5,
                   description="harness logs -f printed the new request")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    errs = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 0, errs[-2000:]
    assert "Traceback" not in errs
    out = "".join(printed)
    assert token not in out and MASK in out


def test_harness_restart_is_the_rollout_restart_of_eso_and_delivery_goes_on(
        platform, eso, vault, vault_store, namespace):
    """`kubectl rollout restart deployment external-secrets -n external-secrets` as
    `harness restart deployment/external-secrets`: every replica replaced (new pids),
    ready again, and a forced sync after it delivers."""
    key = synced_secret(eso, vault, vault_store, namespace, value="before-restart-5c1")
    before = {p.name: p.pid for p in platform.eso_operator.processes()}
    try:
        result = harness(platform, "restart", "deployment/external-secrets")
    finally:
        adopt_recorded_pids(platform)  # what the command changed, this session sees
    assert result.exit_code == 0, result.output
    after = {p.name: p.pid for p in platform.eso_operator.processes()}
    for name in before:
        assert f"restarted {name} (pid {before[name]} -> " in result.output
    state = json.loads(harness(platform, "status", "--json").output)
    procs = state["components"]["eso"]["processes"]
    assert all(procs[n]["ready"] and procs[n]["pid"] != before[n] for n in before), procs
    assert after.keys() == before.keys() and not set(after.values()) & set(before.values())
    vault.kv_put(key, password="after-restart-5c1")
    eso.force_sync(namespace, "app")
    eso.wait_value(namespace, "app", "password", "after-restart-5c1", timeout=60)


# ---- a new Vault path for ESO -----------------------------------------------------------------

def test_a_new_vault_path_needs_the_eso_grant_then_syncs(platform, vault, eso,
                                                        cluster_secret_store, namespace):
    key = f"runbook-grant/{namespace}/api"
    value = f"grant-{namespace}-value"
    vault.kv_put(key, token_value=value)
    before = vault.client().sys.read_policy(name="external-secrets")["data"]["rules"]
    recorded = platform.settings.state_dir / "vault" / "eso-grants"
    recorded_before = recorded.read_text() if recorded.exists() else None
    eso.apply_object(external_secret("payments-api", cluster_secret_store, key, "1h",
                                     kind="ClusterSecretStore", secret_key="token",
                                     prop="token_value"), namespace)
    try:
        eso.wait_error(namespace, "payments-api", timeout=60)
        assert eventually(lambda: any("403" in e for e in eso.events(namespace, "payments-api")),
                          timeout=30, description="the 403 named in an event")

        granted = harness(platform, "eso", "grant", f"secret/{key}")
        assert granted.exit_code == 0, granted.output
        assert f"granted: ESO (policy external-secrets) may read secret/data/{key}" in \
            granted.output
        again = harness(platform, "eso", "grant", key)
        assert "already granted" in again.output

        eso.force_sync(namespace, "payments-api")  # the runbook's annotate
        eso.wait_value(namespace, "payments-api", "token", value, timeout=60)
        assert f"secret/data/{key}" in recorded.read_text().split()  # `up` restores it
    finally:
        vault.write_policy("external-secrets", before)
        if recorded_before is None:
            recorded.unlink(missing_ok=True)
        else:
            recorded.write_text(recorded_before)
        vault.kv_delete_tree(f"runbook-grant/{namespace}")


# ---- a push reaches Argo CD through the webhook -----------------------------------------------

def _application(name: str, repo_url: str, path: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default",
                     "source": {"repoURL": repo_url, "path": path, "targetRevision": "dev"},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": namespace},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}


def _configmap(value: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "settings"}, "data": {"value": value}})


def test_a_push_is_synced_through_the_webhook_not_the_poll(platform, kube, eso, vault,
                                                           vault_store, namespace,
                                                           tmp_path):
    """Push -> Application Synced at the pushed revision, and push -> Secret delivered
    with the value the pushed change points at, each well inside Argo CD's 180 s poll;
    the argocd-server log says the refresh came from the webhook."""
    apps = Applications(kube)
    app_name = f"rb-{namespace}"[:53]
    path = f"runbook/{namespace}"
    prefix = vault_store["prefix"]
    vault.kv_put(f"{prefix}/one", password="value-one-7d2")
    vault.kv_put(f"{prefix}/two", password="value-two-7d2")
    repo = Workspace(platform.git.url(), tmp_path / "ws")
    repo.write(f"{path}/settings.yaml", _configmap("first"))
    repo.write(f"{path}/secret.yaml", yaml.safe_dump(
        external_secret("app", vault_store["store"], f"{prefix}/one", "1h")))
    first = repo.commit(f"{namespace}: first")
    repo.push("dev")
    eso.apply_object(_application(app_name, platform.git.url(), path, namespace), None)
    try:
        def at(revision: str) -> dict[str, Any]:
            st = apps.state(app_name)  # read only: no refresh is asked for here
            assert st["revision"] == revision and st["sync"] == "Synced", st["sync"]
            return st

        eventually(lambda: at(first), timeout=90, description="the first revision Synced")
        eso.wait_value(namespace, "app", "password", "value-one-7d2", timeout=60)

        # push -> Synced
        repo.write(f"{path}/settings.yaml", _configmap("second"))
        second = repo.commit(f"{namespace}: second")
        t0 = time.monotonic()
        repo.push("dev")
        eventually(lambda: at(second), timeout=BOUND, interval=0.1,
                   description="push -> Application Synced (webhook)")
        synced = time.monotonic() - t0
        data = kube.core.read_namespaced_config_map("settings", namespace).data
        assert data == {"value": "second"}

        # push -> Secret updated (the change points the ExternalSecret at another key)
        repo.write(f"{path}/secret.yaml",
                   yaml.safe_dump(external_secret("app", vault_store["store"],
                                                  f"{prefix}/two", "1h")))
        repo.commit(f"{namespace}: the other key")
        t0 = time.monotonic()
        repo.push("dev")
        eso.wait_value(namespace, "app", "password", "value-two-7d2", timeout=BOUND)
        delivered = time.monotonic() - t0
        print(f"\npush -> Synced: {synced:.2f}s; push -> Secret: {delivered:.2f}s "
              f"(Argo CD's poll: 180 s)")
        server_log = Path(platform.component("argocd").logs()["argocd-server"]).read_text()
        assert f"refreshing app '{app_name}' from webhook" in server_log
        assert synced < BOUND and delivered < BOUND
    finally:
        kube.kubectl("delete", "application", app_name, "-n", "argocd", "--wait=false",
                     check=False)
        repo.checkout("dev")
        repo.run("rm", "-r", "-q", path)
        repo.commit(f"{namespace}: done")
        repo.push("dev")
