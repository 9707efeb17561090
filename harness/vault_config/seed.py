"""Vault seed data written as the runbook writes it: `vault kv put secret/<path> k=v ...`.

The seed file is the spec's own commands, so a reader can check them against the runbook
line by line. Every value read from it is registered with the redactor at once.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from harness.errors import HarnessError
from harness.runtime.redact import REDACTOR, secret_values


def parse_seed(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """[(mount, path, values)] from lines `vault kv put <mount>/<path> k=v ...`."""
    entries = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        if words[:3] not in (["vault", "kv", "put"], ["bao", "kv", "put"]) or len(words) < 5:
            raise HarnessError(f"{path}:{lineno}: expected `vault kv put <mount>/<path> "
                               f"key=value ...`")
        mount, _, secret_path = words[3].partition("/")
        values = {}
        for pair in words[4:]:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise HarnessError(f"{path}:{lineno}: {key!r} is not key=value")
            values[key] = value
        REDACTOR.add(*secret_values(values))
        entries.append((mount, secret_path, values))
    return entries
