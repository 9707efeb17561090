"""Redaction: secret values never reach logs, reports, diagnostics or exception text.

Two layers. Known values (unseal keys, root tokens, seeded secret values, generated
tokens) are registered as they are created and replaced wherever they appear, also in
their base64 form (how a Kubernetes Secret carries them). Shapes that are secret whatever
their value (JWTs such as ServiceAccount tokens, PEM private keys, bearer headers,
`token`/`password` fields) are masked by pattern, so a value the harness never saw is
still hidden.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

MASK = "***REDACTED***"
MIN_LEN = 4  # shorter values would blank out ordinary words

PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"\b(?:hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9]{20,}\b"),  # Vault/OpenBao tokens
    re.compile(
        # (not ESO's `"ExternalSecret":{"name":...}`, a kind naming an object in its
        # logs; `externalSecret=...`, `externalToken: ...` are masked as any other)
        r"(?i)(?:(?<!external)|(?!secret\"?\s*[:=]\s*\{))"
        r"(\"?(?:token|password|secret|unseal_keys?_(?:b64|hex)|root_token"
        r"|client_token"
        r"|private[_-]?key)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,}]+)"),
]


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str | bytes | None) -> None:
        """Register secret values (and their base64 forms) to mask from now on."""
        with self._lock:
            for v in values:
                if v is None:
                    continue
                text = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
                if len(text) < MIN_LEN:
                    continue
                self._values.add(text)
                self._values.add(base64.b64encode(text.encode()).decode())

    def values(self) -> list[str]:
        """Everything registered so far (for sweeps that look for leaks)."""
        with self._lock:
            return sorted(self._values)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for v in values:
            text = text.replace(v, MASK)
        for pat in PATTERNS:
            if pat.groups:
                text = pat.sub(lambda m: m.group(1) + MASK, text)
            else:
                text = pat.sub(MASK, text)
        return text


# Keys whose values identify rather than authenticate. Every other value written to
# Vault is treated as secret (fail closed); these would only blank out ordinary words
# ("postgres") all over logs and object names.
NON_SECRET_KEYS = frozenset({"username", "user", "login", "host", "hostname", "port", "url",
                             "database", "db", "name", "email"})


def secret_values(values: dict[str, str]) -> list[str]:
    return [v for k, v in values.items() if k.lower() not in NON_SECRET_KEYS]


REDACTOR = Redactor()
"""The process-wide redactor: components register the secrets they create here."""


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def redact_doc(doc: Any) -> Any:
    """`doc` (a JSON-like document) with every string, keys too, redacted one by one:
    redacting the dumped text instead could let a `"token": "..."` pattern swallow a
    quote and leave JSON that no longer parses."""
    if isinstance(doc, dict):
        return {redact(str(k)): redact_doc(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [redact_doc(v) for v in doc]
    if isinstance(doc, str):
        return redact(doc)
    return doc


class LineRedactor:
    """`redact` for a stream read line by line (`harness logs -f`): a PEM private key
    spans lines, so from its BEGIN line to its END line every line is masked whole —
    the one-string pattern cannot see a block it only gets a line of."""

    _BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    _END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")

    def __init__(self) -> None:
        self._inside = False

    def __call__(self, line: str) -> str:
        if self._inside:
            if self._END.search(line):
                self._inside = False
            return MASK
        begin = self._BEGIN.search(line)
        if begin and not self._END.search(line, begin.end()):
            self._inside = True
            return redact(line[:begin.start()]) + MASK
        return redact(line)
