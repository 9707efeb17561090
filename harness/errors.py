"""Errors the harness raises on purpose: each message is meant for a person to act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class HarnessError(Exception):
    """A clear, specific failure (bad input, missing binary, failed readiness...)."""


class ToolchainError(HarnessError):
    """A component could not be built/installed; the message names it and shows why."""

    def __init__(self, component: str, message: str, log_tail: str = "") -> None:
        self.component = component
        self.log_tail = log_tail
        text = f"{component}: {message}"
        if log_tail:
            text += "\n--- last lines of the build log ---\n" + log_tail
        super().__init__(text)


class ToolchainMissing(HarnessError):
    """A binary or file of the toolchain is not installed (or not intact) here: the
    message names it and the install command."""


class ComponentStartError(HarnessError):
    """A component missed its readiness deadline or exited; carries its log tail."""


class InputError(HarnessError):
    """A file given as input (manifests, rule files, Vault Helm values, a backend config)
    is unusable; the message names the file and, where known, the line or key.

    The loaders' own errors derive from it so every loader reads and parses the same way
    and fails the same way: one line naming the file, never a UnicodeDecodeError or a
    parser's traceback — whatever bytes a user hands over (a binary file, deep nesting).
    """

    @classmethod
    def read_text(cls, path: Path, where: str | None = None) -> str:
        """The file's UTF-8 text (a BOM allowed), or this error naming `where` (default:
        the path): missing, a directory, unreadable, or not text at all."""
        label = where or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise cls(f"{label}: no such file") from None
        except IsADirectoryError:
            raise cls(f"{label}: is a directory, not a file") from None
        except OSError as exc:
            raise cls(f"{label}: cannot read: {exc.strerror or exc}") from None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            offset = exc.start + len(data) - len(exc.object)  # exc.object: after a BOM
            raise cls(f"{label}: not UTF-8 text (byte 0x{data[offset]:02x} at offset "
                      f"{offset}): a binary file?") from None

    @staticmethod
    def yaml_problem(where: str, exc: Exception) -> str:
        """`where:line: YAML error: what (context)` on one line, for any YAMLError (and
        RecursionError: nesting deeper than the parser goes)."""
        if isinstance(exc, RecursionError):
            return f"{where}: YAML error: nested too deeply"
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        problem = getattr(exc, "problem", None)
        if problem is None:  # ReaderError (a control character) and other bare errors
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        context = getattr(exc, "context", None)
        return f"{at}: YAML error: {problem}" + (f" ({context})" if context else "")

    @classmethod
    def load_yaml(cls, path: Path, where: str | None = None) -> list[Any]:
        """Every YAML document of the file (safe loader, libyaml when available), or this
        error naming `where`: unreadable, not text, or not YAML."""
        import yaml

        label = where or str(path)
        text = cls.read_text(path, label)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            return list(yaml.load_all(text, Loader=loader))
        except (yaml.YAMLError, RecursionError) as exc:
            raise cls(cls.yaml_problem(label, exc)) from None

    @staticmethod
    def kind_of(value: object) -> str:
        """How a wrong value is shown: `12345 (a number)`, `a list`, `'yes' (text)`."""
        if isinstance(value, bool):
            return f"{str(value).lower()} (a boolean)"
        if isinstance(value, int | float):
            return f"{value!r} (a number)"
        if isinstance(value, str):
            shown = value if len(value) <= 40 else value[:37] + "..."
            return f"{shown!r} (text)"
        if value is None:
            return "null"
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        return type(value).__name__
