"""The runbook's tools on the local backend, without a cluster: the Git server's push
webhook (a real push over smart HTTP to a real receiver, signature checked), `harness
logs` (tail, follow, names), `harness eso grant`'s policy text, and the order of a
failed scenario's diagnostics."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest

from harness.cli.runbook import Follower, LogSources, tail_lines
from harness.daemons import gitserver
from harness.errors import HarnessError
from harness.testing import diagnostics
from harness.vault_config.eso_grants import kv_policy_path, with_read_grants
from harness.wait import consistently, eventually

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
       "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


def run_git(*args: str, cwd: Path) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                      "HOME": str(cwd),
                                                      "GIT_CONFIG_NOSYSTEM": "1"}).stdout


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on 127.0.0.1 (a free port) for the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class Receiver:
    """Argo CD's /api/webhook as far as the Git server can tell: records each POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self.handler = Handler


@pytest.fixture
def pushed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A bare repo served by the Git server with a webhook config naming a receiver on
    127.0.0.1, and a clone of it."""
    root = tmp_path / "repos"
    bare = root / "platform.git"
    bare.mkdir(parents=True)
    run_git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    run_git("config", "http.receivepack", "true", cwd=bare)
    secret = tmp_path / "webhook-secret"
    secret.write_text("s3cret-hook-key\n")
    receiver = Receiver()
    config = tmp_path / "webhook.json"
    handler = gitserver.handler_for(root, "git", webhook_config=config)
    with serve(receiver.handler) as hook, serve(handler) as git_http:
        base = f"http://127.0.0.1:{git_http.server_address[1]}"
        config.write_text(json.dumps({
            "url": f"http://127.0.0.1:{hook.server_address[1]}/api/webhook",
            "secret_file": str(secret), "repo_base": base}))
        work = tmp_path / "work"
        work.mkdir()
        run_git("init", "-q", "-b", "dev", cwd=work)
        (work / "apps").mkdir()
        (work / "apps" / "a.yaml").write_text("kind: ConfigMap\n")
        run_git("add", "-A", cwd=work)
        run_git("commit", "-q", "-m", "first", cwd=work)
        run_git("remote", "add", "origin", f"{base}/platform.git", cwd=work)
        yield {"work": work, "receiver": receiver, "base": base,
               "secret": b"s3cret-hook-key", "config": config}


def test_a_push_is_announced_as_a_signed_gogs_push_event(pushed: dict[str, Any]) -> None:
    work, receiver = pushed["work"], pushed["receiver"]
    run_git("push", "-q", "origin", "HEAD:refs/heads/dev", cwd=work)
    first = run_git("rev-parse", "HEAD", cwd=work).strip()
    eventually(lambda: len(receiver.requests) == 1, timeout=10,
               description="the new branch announced")
    (work / "apps" / "a.yaml").write_text("kind: ConfigMap\ndata: {}\n")
    (work / "apps" / "b.yaml").write_text("kind: Secret\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "second", cwd=work)
    run_git("push", "-q", "origin", "HEAD:refs/heads/dev", cwd=work)
    second = run_git("rev-parse", "HEAD", cwd=work).strip()
    eventually(lambda: len(receiver.requests) == 2, timeout=10,
               description="the moved branch announced")

    headers, body = receiver.requests[1]
    assert headers["X-Gogs-Event"] == "push"
    expected = hmac.new(pushed["secret"], body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Gogs-Signature"], expected)
    event = json.loads(body)
    assert (event["ref"], event["before"], event["after"]) == ("refs/heads/dev", first,
                                                               second)
    # Argo CD matches html_url against repoURL (.git optional) and the branch
    assert event["repository"]["html_url"] == f"{pushed['base']}/platform"
    [commit] = event["commits"]
    assert (commit["id"], commit["added"], commit["modified"]) == (
        second, ["apps/b.yaml"], ["apps/a.yaml"])
    created = json.loads(receiver.requests[0][1])
    assert created["before"] == gitserver.ZERO and created["commits"][0]["added"] == [
        "apps/a.yaml"]


def test_no_webhook_without_a_config_and_none_beyond_127_0_0_1(
        pushed: dict[str, Any], tmp_path: Path) -> None:
    pushed["config"].unlink()
    assert gitserver.webhook_target(pushed["config"]) is None
    run_git("push", "-q", "origin", "HEAD:refs/heads/dev", cwd=pushed["work"])
    # the push itself succeeded; the webhook would go from a thread: none comes
    consistently(lambda: pushed["receiver"].requests == [], duration=1.0,
                 description="no webhook request without a config")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"url": "http://10.0.0.1/api/webhook",
                                     "repo_base": "http://127.0.0.1:1"}))
    with pytest.raises(ValueError, match=r"only http://127\.0\.0\.1"):
        gitserver.webhook_target(elsewhere)


def test_moved_names_created_and_moved_branches_only() -> None:
    before = {"refs/heads/dev": "a" * 40, "refs/heads/main": "b" * 40,
              "refs/heads/old": "c" * 40}
    after = {"refs/heads/dev": "d" * 40, "refs/heads/main": "b" * 40,
             "refs/heads/new": "e" * 40}
    assert gitserver.moved(before, after) == [
        ("refs/heads/dev", "a" * 40, "d" * 40), ("refs/heads/new", gitserver.ZERO, "e" * 40)]


# ---- harness logs ---------------------------------------------------------------------------

def test_tail_lines_reads_only_the_end_and_says_where_it_ends(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(50_000)))
    lines, end = tail_lines(log, 3, block=1024)
    assert lines == ["line 49997", "line 49998", "line 49999"]
    assert end == log.stat().st_size
    assert tail_lines(log, 0)[0] == []
    assert tail_lines(tmp_path / "missing.log", 5) == ([], 0)


def test_follower_yields_complete_lines_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    log.write_text("old\n")
    fol = Follower(log, log.stat().st_size)
    assert fol.poll() == []
    with log.open("a") as fh:
        fh.write("one\ntw")
    assert fol.poll() == ["one"]
    with log.open("a") as fh:
        fh.write("o\n")
    assert fol.poll() == ["two"]
    log.write_text("fresh\n")  # truncated and rewritten
    assert fol.poll() == ["fresh"]


def test_log_names_resolve_like_kubectl_and_unknown_ones_list_the_valid(
        tmp_path: Path) -> None:
    def p(name: str) -> Path:
        return tmp_path / f"{name}.log"

    procs = ["external-secrets", "external-secrets-1", "vault", "argocd-server",
             "argocd-repo-server"]
    sources = LogSources(tmp_path, {n: p(n) for n in procs},
                         {"eso": procs[:2], "vault": ["vault"],
                          "argocd": ["argocd-server", "argocd-repo-server"]},
                         {"vault-audit": p("vault-audit")})
    assert sources.resolve("deployment/external-secrets") == {
        "external-secrets": p("external-secrets")}
    assert list(sources.resolve("eso")) == ["external-secrets", "external-secrets-1"]
    assert sources.resolve("vault-0") == {"vault": p("vault")}  # dev: one node
    assert sources.resolve("statefulset/vault") == {"vault": p("vault")}
    assert sources.resolve("deploy/argocd-server") == {"argocd-server": p("argocd-server")}
    assert list(sources.resolve("argocd")) == ["argocd-server", "argocd-repo-server"]
    assert sources.resolve("vault-audit") == {"vault-audit": p("vault-audit")}
    with pytest.raises(click.BadParameter, match=r"choose one of: .*argocd-server.*eso"):
        sources.resolve("nginx")


# ---- harness eso grant ----------------------------------------------------------------------

@pytest.mark.parametrize(("given", "policy_path"), [
    ("payments/api", "secret/data/payments/api"),
    ("secret/payments/api", "secret/data/payments/api"),
    ("/secret/data/payments/api/", "secret/data/payments/api"),
    ("payments/*", "secret/data/payments/*"),
])
def test_kv_paths_become_kv_v2_data_paths(given: str, policy_path: str) -> None:
    assert kv_policy_path(given) == policy_path


@pytest.mark.parametrize("bad", ['x" { capabilities = ["sudo"] } #', "", "a/../../sys",
                                 "a b", "secret/", "a}\npath", "a\nb"])
def test_a_path_that_could_escape_the_policy_is_refused(bad: str) -> None:
    with pytest.raises(HarnessError, match="not a Vault KV path"):
        kv_policy_path(bad)


def test_grants_are_added_once_and_existing_rules_kept() -> None:
    base = 'path "secret/data/postgres/main" {\n  capabilities = ["read"]\n}\n'
    hcl, added = with_read_grants(base, ["secret/data/pay/api", "secret/data/postgres/main",
                                         "secret/data/pay/api"])
    assert added == ["secret/data/pay/api"]
    assert hcl.startswith(base.rstrip("\n"))
    assert hcl.count('path "secret/data/pay/api"') == 1
    assert 'capabilities = ["read"]' in hcl.split('"secret/data/pay/api"')[1]
    assert with_read_grants(hcl, ["secret/data/pay/api"]) == (hcl, [])


# ---- diagnostics ----------------------------------------------------------------------------

def test_diagnostics_put_the_test_namespaces_events_first() -> None:
    calls: list[tuple[str, ...]] = []

    def kubectl(*args: str, check: bool = True) -> SimpleNamespace:
        calls.append(args)
        scope = "ns" if "-n" in args else "all"
        what = "events" if args[1] == "events" else "objects"
        return SimpleNamespace(stdout=f"HEADER\n{scope}-{what} token=abc123secret\n",
                               stderr="")

    env = SimpleNamespace(diagnostics=lambda lines: "== kube/kube-apiserver: ready")
    text = diagnostics.collect(env, SimpleNamespace(kubectl=kubectl), "t-ns")  # type: ignore[arg-type]
    order = [text.index(s) for s in ("== events in t-ns ==", "ns-events",
                                     "== objects in t-ns ==", "kube-apiserver: ready",
                                     "== recent events ==", "all-events")]
    assert order == sorted(order)
    assert "abc123secret" not in text  # redacted
    assert calls[0][:4] == ("get", "events", "-n", "t-ns")
    assert "--sort-by=.lastTimestamp" in calls[0]


def test_the_grant_extends_the_policy_eso_logs_in_with() -> None:
    from harness.backends.local.components.eso import VAULT_POLICY
    from harness.vault_config.eso_grants import ESO_POLICY

    assert ESO_POLICY == VAULT_POLICY


def test_recorded_grants_are_kept_in_order_once_and_read_back(tmp_path):
    """What ESO's install step reads on a fresh `up` to write its policy with them."""
    from harness.vault_config.eso_grants import record_grants, recorded_grants

    assert recorded_grants(tmp_path) == []
    record_grants(tmp_path, ["secret/data/a/*", "secret/data/b"])
    record_grants(tmp_path, ["secret/data/b", "secret/data/c"])
    assert recorded_grants(tmp_path) == ["secret/data/a/*", "secret/data/b", "secret/data/c"]
    hcl, added = with_read_grants('path "secret/data/x" {\n}\n', recorded_grants(tmp_path))
    assert added == recorded_grants(tmp_path) and hcl.count("capabilities") == 3
