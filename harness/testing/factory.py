"""Environments a suite starts for itself: another profile, other components, a second
environment beside the session's. Each gets a temporary state directory and its own run
id, and is torn down when its `with` block ends — or at the end of the session, at the
latest, whatever a suite forgot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.backends.local.environment import LocalEnvironment
from harness.settings import Settings, parse_components
from harness.testing.options import option


def settings_from_options(config: pytest.Config, tmp_factory: pytest.TempPathFactory,
                          state_dir: Path | None = None) -> Settings:
    """Settings from the session's --harness-* options (profile, time scale, components,
    Vault values) and the environment variables they default to."""
    profile = option(config, "profile") or os.environ.get("HERACLES_PROFILE", "dev")
    state = state_dir or option(config, "state-dir") or os.environ.get("HERACLES_STATE_DIR")
    if state is None:
        if option(config, "reuse"):
            state = str(Settings(profile=profile).state_dir.parent / f"pytest-{profile}")
        else:
            state = str(tmp_factory.mktemp("heracles-state"))
    comps = option(config, "components")
    scale = option(config, "time-scale") or float(
        os.environ.get("HERACLES_TIME_SCALE") or 60)
    values = option(config, "vault-values")
    base = Settings(profile=profile, state_dir=Path(state), time_scale=scale,
                    components=parse_components(comps) if comps else None)
    return base.with_(vault_values=Path(values).resolve() if values else None,
                      kind_image=option(config, "kind-image"))


class EnvironmentFactory:
    """What the `environment_factory` fixture hands out."""

    def __init__(self, config: pytest.Config, tmp_factory: pytest.TempPathFactory,
                 base: Settings | None = None) -> None:
        self._config = config
        self._tmp = tmp_factory
        self._base = base  # the session's (heracles_settings, overrides included)
        self._running: list[LocalEnvironment] = []

    def settings(self, name: str = "env", **overrides: Any) -> Settings:
        """The session's settings with a fresh state directory and `overrides`
        (profile=..., components=(...), vault_values=Path, ...)."""
        state = self._tmp.mktemp(name)
        base = self._base.with_(state_dir=state) if self._base is not None else \
            settings_from_options(self._config, self._tmp, state)
        return base.with_(**overrides) if overrides else base

    def up(self, name: str = "env", **overrides: Any) -> LocalEnvironment:
        """A local environment started now; down() it yourself or let the session do it."""
        env = LocalEnvironment(self.settings(name, **overrides))
        self._running.append(env)
        env.up(mode="session")
        return env

    @contextmanager
    def environment(self, name: str = "env", **overrides: Any) -> Iterator[LocalEnvironment]:
        """A local environment for the `with` block: up on entry, down on exit."""
        env = self.up(name, **overrides)
        try:
            yield env
        finally:
            self.down(env)

    def down(self, env: LocalEnvironment) -> None:
        if env in self._running:
            self._running.remove(env)
        env.down()

    def close(self) -> None:
        """Session end: whatever is still up goes down."""
        while self._running:
            self.down(self._running[-1])
