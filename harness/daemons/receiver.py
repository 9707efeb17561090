"""The harness's Alertmanager webhook receiver: records every notification as one JSON
line, so scenarios can assert what was delivered (labels, annotations, status).

Runs as its own supervised process (it must outlive a detached `harness up`):
`python -m harness.daemons.receiver --listen 127.0.0.1:PORT --out FILE`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.runtime.redact import redact

_lock = threading.Lock()


def make_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            line = json.dumps({"received": time.time(), "path": self.path,
                               "payload": payload})
            with _lock, out.open("a") as fh:
                fh.write(redact(line) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, fmt: str, *args: object) -> None:
            print(fmt % args, flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.touch()
    server = ThreadingHTTPServer((host, int(port)), make_handler(args.out))
    print(f"receiver listening on {args.listen}, recording to {args.out}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
