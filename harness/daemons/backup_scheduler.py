"""Scheduled snapshots (the prod profile's "automatic snapshots"): a small supervised
process that, every interval, saves a Vault raft snapshot and an etcd snapshot, keeps the
newest N of each, and exposes how it went as Prometheus metrics on 127.0.0.1.

Run by the `backup` component as `python -m harness.daemons.backup_scheduler ...`. The
Vault token (a snapshot-only policy) is read from its 0600 file, never from argv or the
environment.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

KINDS = {"vault-raft": ".snap", "etcd": ".db"}
INDEX = "snapshots.json"


@dataclass(frozen=True)
class Snapshot:
    kind: str
    path: Path
    taken: float

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def snapshot_name(kind: str, when: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(when))
    return f"{kind}-{stamp}-{int(when * 1000) % 1000:03d}Z{KINDS[kind]}"


def existing(directory: Path, kind: str) -> list[Path]:
    """Complete snapshots of one kind, oldest first (names sort by time)."""
    return sorted(p for p in directory.glob(f"{kind}-*{KINDS[kind]}") if p.is_file())


def prune(directory: Path, kind: str, keep: int) -> list[Path]:
    """Retention: delete all but the newest `keep` snapshots of a kind; return them."""
    if keep < 1:
        raise ValueError("retention must keep at least one snapshot")
    doomed = existing(directory, kind)[:-keep]
    for path in doomed:
        path.unlink()
    return doomed


def write_index(directory: Path) -> None:
    entries = [{"kind": kind, "file": p.name, "bytes": p.stat().st_size}
               for kind in KINDS for p in existing(directory, kind)]
    tmp = directory / f".{INDEX}.tmp"
    tmp.write_text(json.dumps(entries, indent=2))
    tmp.replace(directory / INDEX)


def _atomic_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.touch(mode=0o600)
    tmp.write_bytes(data)
    tmp.replace(path)


def vault_snapshot(address: str, ca: Path, token_file: Path, dest: Path) -> None:
    """GET sys/storage/raft/snapshot (what `operator raft snapshot save` does)."""
    token = token_file.read_text().strip()
    req = urllib.request.Request(f"{address}/v1/sys/storage/raft/snapshot",
                                 headers={"X-Vault-Token": token})
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
        data = resp.read()
    if not data:
        raise RuntimeError("Vault returned an empty snapshot")
    _atomic_private(dest, data)


def etcd_snapshot(etcdctl: str, endpoint: str, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    result = subprocess.run([etcdctl, f"--endpoints={endpoint}", "snapshot", "save",
                             str(tmp)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"etcdctl snapshot save: {result.stderr.strip()[-300:]}")
    tmp.chmod(0o600)
    tmp.replace(dest)


def main(argv: list[str] | None = None) -> int:
    from prometheus_client import Counter, Gauge, start_http_server

    ap = argparse.ArgumentParser(prog="python -m harness.daemons.backup_scheduler")
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--interval", type=float, required=True, help="seconds between runs")
    ap.add_argument("--keep", type=int, required=True, help="snapshots kept per kind")
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--vault-address", required=True)
    ap.add_argument("--vault-ca", type=Path, required=True)
    ap.add_argument("--vault-token-file", type=Path, required=True)
    ap.add_argument("--etcdctl", required=True)
    ap.add_argument("--etcd-endpoint", required=True)
    args = ap.parse_args(argv)
    if args.keep < 1 or args.interval <= 0:
        ap.error("--keep must be >= 1 and --interval > 0")
    args.dir.mkdir(parents=True, exist_ok=True)

    last_ok = Gauge("heracles_backup_last_success_timestamp_seconds",
                    "When the last snapshot of a kind was saved", ["kind"])
    failures = Counter("heracles_backup_failures", "Snapshots that failed", ["kind"])
    kept = Gauge("heracles_backup_snapshots", "Snapshots kept of a kind", ["kind"])
    start_http_server(args.metrics_port, addr="127.0.0.1")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    takers = {
        "vault-raft": lambda dest: vault_snapshot(args.vault_address, args.vault_ca,
                                                  args.vault_token_file, dest),
        "etcd": lambda dest: etcd_snapshot(args.etcdctl, args.etcd_endpoint, dest),
    }
    while not stop.is_set():
        started = time.time()
        for kind, take in takers.items():
            dest = args.dir / snapshot_name(kind, started)
            try:
                take(dest)
            except Exception as exc:  # noqa: BLE001 - reported, retried next round
                failures.labels(kind).inc()
                print(f"{time.strftime('%H:%M:%S')} {kind}: snapshot failed: "
                      f"{type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr, flush=True)
                continue
            removed = prune(args.dir, kind, args.keep)
            last_ok.labels(kind).set(time.time())
            kept.labels(kind).set(len(existing(args.dir, kind)))
            print(f"{time.strftime('%H:%M:%S')} {kind}: saved {dest.name} "
                  f"({dest.stat().st_size} bytes), pruned {len(removed)}",
                  file=sys.stderr, flush=True)
        write_index(args.dir)
        stop.wait(max(0.0, args.interval - (time.time() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
