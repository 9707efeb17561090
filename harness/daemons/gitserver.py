"""Smart-HTTP Git server: `git http-backend` (git's own CGI program) behind a small
threaded HTTP server on 127.0.0.1 — repository URLs look like production ones
(http://127.0.0.1:PORT/platform.git) and clone/fetch/push use the real protocol.

Run by the `git` component as `python -m harness.daemons.gitserver --root DIR --port N
[--auth-file F]`. With `--auth-file` (one `user:password` line, 0600) every request but
/healthz needs those credentials (HTTP Basic), as a hosted Git server would: what
`argocd repo add --username --password` is for.

With `--webhook-config F`, every push that moves a branch is announced to Argo CD as a
hosted Git server's webhook would: a Gogs push event (`X-Gogs-Event: push`, HMAC-SHA256
in `X-Gogs-Signature` when a secret is configured) POSTed to the API server's
`/api/webhook`, which refreshes the Applications tracking that repo and branch at once —
without it a push waits for Argo CD's poll (`timeout.reconciliation`, 180 s). F is JSON
`{"url": "http://127.0.0.1:P/api/webhook", "secret_file": "...", "repo_base":
"http://127.0.0.1:Q"}`, read at each push (Argo CD may start, move or stop after this
server); no file, no webhook. Only 127.0.0.1 is ever called.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ZERO = "0" * 40
MAX_COMMITS = 50  # per push event, as hosted servers cap theirs


def branch_heads(git: str, repo: Path) -> dict[str, str]:
    """refs/heads/* -> sha of a bare repository (empty when it has none yet)."""
    out = subprocess.run([git, "for-each-ref", "--format=%(objectname) %(refname)",
                          "refs/heads"], cwd=repo, capture_output=True, text=True,
                         timeout=30, env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)})
    heads: dict[str, str] = {}
    for line in out.stdout.splitlines():
        sha, _, ref = line.partition(" ")
        heads[ref] = sha
    return heads


def moved(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    """(ref, old sha, new sha) for every branch a push created or moved (deletions are
    no event for Argo CD: nothing to refresh to)."""
    return [(ref, before.get(ref, ZERO), sha) for ref, sha in sorted(after.items())
            if before.get(ref) != sha]


def _commits(git: str, repo: Path, old: str, new: str, web_url: str) -> list[dict[str, Any]]:
    """The pushed commits, newest first, each with the files it added/modified/removed
    (Argo CD matches them against an Application's manifest-generate-paths)."""
    span = new if old == ZERO else f"{old}..{new}"
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    log = subprocess.run([git, "log", f"--max-count={MAX_COMMITS}",
                          "--format=%H%x00%cI%x00%an%x00%ae%x00%s", span], cwd=repo,
                         capture_output=True, text=True, timeout=30, env=env).stdout
    commits = []
    for line in log.splitlines():
        sha, stamp, name, email, subject = (line.split("\x00") + [""] * 5)[:5]
        files: dict[str, list[str]] = {"added": [], "modified": [], "removed": []}
        changes = subprocess.run([git, "diff-tree", "--root", "--no-commit-id", "-r", "-m",
                                  "--first-parent", "--name-status", sha], cwd=repo,
                                 capture_output=True,
                                 text=True, timeout=30, env=env).stdout
        for change in changes.splitlines():
            status, _, path = change.partition("\t")
            key = {"A": "added", "D": "removed"}.get(status[:1], "modified")
            files[key].append(path.split("\t")[-1])  # a rename: its new path
        user = {"name": name, "email": email, "username": name}
        commits.append({"id": sha, "message": subject, "url": f"{web_url}/commit/{sha}",
                        "author": user, "committer": user, "timestamp": stamp, **files})
    if len(commits) >= MAX_COMMITS:  # some files unlisted: no list = refresh every app
        for commit in commits:
            commit.update(added=[], modified=[], removed=[])
    return commits


def push_event(git: str, repo: Path, ref: str, old: str, new: str,
               repo_base: str) -> dict[str, Any]:
    """A Gogs push event for one ref, as go-gogs-client's PushPayload reads it; Argo CD
    matches `repository.html_url` against each Application's repoURL (`.git` optional)
    and the branch against its targetRevision."""
    name = repo.name.removesuffix(".git")
    web_url = f"{repo_base}/{name}"
    head = subprocess.run([git, "symbolic-ref", "--short", "HEAD"], cwd=repo,
                          capture_output=True, text=True, timeout=30,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}).stdout.strip()
    owner = {"id": 1, "login": "heracles", "username": "heracles", "full_name": "heracles"}
    return {"ref": ref, "before": old, "after": new,
            "compare_url": f"{web_url}/compare/{old}...{new}",
            "commits": _commits(git, repo, old, new, web_url),
            "repository": {"id": 1, "owner": owner, "name": name,
                           "full_name": f"heracles/{name}", "html_url": web_url,
                           "clone_url": f"{repo_base}/{repo.name}",
                           "default_branch": head or "main"},
            "pusher": owner, "sender": owner}


def webhook_target(config: Path) -> tuple[str, bytes | None, str] | None:
    """(url, secret or None, repo base URL) from the webhook config, or None when there
    is none. A URL that is not http://127.0.0.1 is refused: pushes are announced on
    this machine only."""
    try:
        cfg = json.loads(config.read_text())
    except FileNotFoundError:
        return None
    url = str(cfg["url"])
    if urlsplit(url).scheme != "http" or urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"webhook url {url!r}: only http://127.0.0.1 is called")
    secret_file = cfg.get("secret_file")
    secret = Path(secret_file).read_bytes().strip() if secret_file and Path(
        secret_file).exists() else None
    return url, secret, str(cfg["repo_base"])


def send_webhook(url: str, event: dict[str, Any], secret: bytes | None,
                 timeout: float = 10) -> int:
    """POST one push event; returns the HTTP status (the body is never logged)."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "X-Gogs-Event": "push",
               "X-Gogs-Delivery": event["after"], "User-Agent": "heracles-gitserver"}
    if secret:
        headers["X-Gogs-Signature"] = hmac.new(secret, body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with direct.open(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def announce(git: str, repo: Path, pushed: list[tuple[str, str, str]],
             config: Path) -> None:
    """Each moved branch to Argo CD's webhook; the outcome (never the payload or its
    signature) goes to this server's log. A failure is logged, not raised: the push
    itself succeeded, and Argo CD's poll still comes."""
    try:
        target = webhook_target(config)
        if target is None:
            return
        url, secret, repo_base = target
        for ref, old, new in pushed:
            status = send_webhook(url, push_event(git, repo, ref, old, new, repo_base),
                                  secret)
            sys.stderr.write(f"webhook: {repo.name} {ref} {old[:8]}..{new[:8]} -> {url} "
                             f"HTTP {status}\n")
    except Exception as exc:  # noqa: BLE001 - a webhook never fails a push
        sys.stderr.write(f"webhook: {repo.name}: not delivered: {type(exc).__name__}: "
                         f"{exc}\n")


def handler_for(root: Path, git: str, credentials: str | None = None,
                webhook_config: Path | None = None) -> type[BaseHTTPRequestHandler]:
    expected = ("Basic " + base64.b64encode(credentials.encode()).decode()
                if credentials else None)

    class GitHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the CGI body is streamed until EOF

        def _cgi(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok\n")
                return
            if expected and not hmac.compare_digest(
                    self.headers.get("Authorization", "").encode(), expected.encode()):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="heracles-git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            repo = self._pushed_repo(url.path) if webhook_config else None
            before = branch_heads(git, repo) if repo else {}
            env = {"GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                   "REQUEST_METHOD": self.command, "PATH_INFO": url.path,
                   "QUERY_STRING": url.query, "CONTENT_TYPE": self.headers.get(
                       "Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "REMOTE_ADDR": self.client_address[0], "REMOTE_USER": "heracles",
                   "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            proc = subprocess.run([git, "http-backend"], input=body, env=env,
                                  capture_output=True, timeout=300)
            head, _, payload = proc.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = proc.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr.decode(errors="replace")[-500:])
            elif repo and webhook_config and (pushed := moved(before,
                                                              branch_heads(git, repo))):
                # After the response: the pusher does not wait for Argo CD.
                threading.Thread(target=announce, args=(git, repo, pushed, webhook_config),
                                 daemon=True).start()

        def _pushed_repo(self, path: str) -> Path | None:
            """The bare repository a receive-pack (push) request writes to, if any."""
            if self.command != "POST" or not path.endswith("/git-receive-pack"):
                return None
            repo = (root / path.removesuffix("/git-receive-pack").lstrip("/")).resolve()
            inside = repo.is_relative_to(root.resolve()) and (repo / "HEAD").exists()
            return repo if inside else None

        do_GET = _cgi
        do_POST = _cgi

        def log_message(self, fmt: str, *args: object) -> None:
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    return GitHandler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.daemons.gitserver")
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--git", default="git")
    ap.add_argument("--auth-file", type=Path, help="user:password required of every client")
    ap.add_argument("--webhook-config", type=Path,
                    help="JSON naming Argo CD's /api/webhook (read at each push)")
    args = ap.parse_args(argv)
    creds = args.auth_file.read_text().strip() if args.auth_file else None
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 handler_for(args.root, args.git, creds, args.webhook_config))
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
