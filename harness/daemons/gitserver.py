"""Smart-HTTP Git server: `git http-backend` (git's own CGI program) behind a small
threaded HTTP server on 127.0.0.1 — repository URLs look like production ones
(http://127.0.0.1:PORT/platform.git) and clone/fetch/push use the real protocol.

Run by the `git` component as `python -m harness.daemons.gitserver --root DIR --port N
[--auth-file F]`. With `--auth-file` (one `user:password` line, 0600) every request but
/healthz needs those credentials (HTTP Basic), as a hosted Git server would: what
`argocd repo add --username --password` is for.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def handler_for(root: Path, git: str,
                credentials: str | None = None) -> type[BaseHTTPRequestHandler]:
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
    args = ap.parse_args(argv)
    creds = args.auth_file.read_text().strip() if args.auth_file else None
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 handler_for(args.root, args.git, creds))
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
