from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.settings import Settings


def test_defaults_follow_xdg(monkeypatch, tmp_path):
    for var in ("HERACLES_PROFILE", "HERACLES_STATE_DIR", "HERACLES_CACHE_DIR",
                "HERACLES_REGISTRY_DIR", "HERACLES_COMPONENTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    s = Settings()
    assert s.profile == "dev"
    assert s.state_dir == tmp_path / "s" / "heracles-harness" / "default"
    assert s.cache_dir == tmp_path / "c" / "heracles-harness"
    assert s.components is None


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("HERACLES_PROFILE", "staging")
    monkeypatch.setenv("HERACLES_STATE_DIR", str(tmp_path / "x"))
    monkeypatch.setenv("HERACLES_COMPONENTS", "kube, etcd")
    monkeypatch.setenv("HERACLES_START_TIMEOUT", "5")
    s = Settings()
    assert (s.profile, s.state_dir, s.components, s.start_timeout) == (
        "staging", tmp_path / "x", ("kube", "etcd"), 5.0)
    assert s.with_(profile="prod", state_dir=None).state_dir == tmp_path / "x"


@pytest.mark.parametrize("var,value,message", [
    ("HERACLES_PROFILE", "qa", "unknown profile 'qa'; choose one of: dev, staging, prod"),
    ("HERACLES_START_TIMEOUT", "soon", "HERACLES_START_TIMEOUT='soon' is not a number"),
    ("HERACLES_STOP_GRACE", "-1", "must be positive"),
])
def test_bad_settings_are_named(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(HarnessError, match=message.replace("(", r"\(")):
        Settings()


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Settings(state_dir=Path("rel")).state_dir == tmp_path / "rel"
