"""Errors the harness raises on purpose: each message is meant for a person to act on."""

from __future__ import annotations


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


class ComponentStartError(HarnessError):
    """A component missed its readiness deadline or exited; carries its log tail."""
