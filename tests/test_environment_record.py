"""The local environment's state record (`<state>/environment.json`): its file form through
a real StateDir, its status transitions, and the questions asked of it (`is_live`,
`running_profile`) against a real run registry. No process is started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.local.record import (
    EnvironmentRecord,
    RecordError,
    Status,
    running_profile,
)
from harness.errors import HarnessError
from harness.runtime.registry import RunRegistry, _mark_state_down
from harness.runtime.state import SCHEMA, StateDir

RUN = "20250101120000-abc123"


def full_record(**changes: object) -> EnvironmentRecord:
    """A record with every field set to something other than its default."""
    fields: dict[str, object] = dict(
        run_id=RUN, profile="staging", status=Status.UP,
        components=["etcd", "kube", "vault"],
        ports={"etcd.client": 20001, "kube.apiserver": 20002, "vault.api": 20003},
        processes={"etcd": {"pid": 4242, "create_time": 1700000000.25},
                   "kube-apiserver": {"pid": 4243, "create_time": 1700000001.5}},
        endpoints={"kube-apiserver": "https://127.0.0.1:20002"},
        time_scale=60.0, vault_values="/srv/values.yaml", created=1700000000.0,
        extra={"written_by": "a later harness"})
    fields.update(changes)
    return EnvironmentRecord(**fields)  # type: ignore[arg-type]


# ---- file form ----------------------------------------------------------------------------
def test_every_field_survives_save_and_load_through_a_state_dir(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    record = full_record()
    record.save(state)

    loaded = EnvironmentRecord.load(state)
    assert loaded == record
    assert loaded is not None and loaded.status is Status.UP  # the enum, not the string
    assert loaded.is_up


def test_the_schema_is_written_by_the_state_dir_not_by_the_record(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    record = full_record()
    assert "schema" not in record.to_dict()
    record.save(state)

    on_disk = json.loads(state.file.read_text())
    assert on_disk["schema"] == SCHEMA
    assert on_disk["status"] == "up"  # a plain string in the file
    assert on_disk["run_id"] == RUN and on_disk["profile"] == "staging"
    # and `schema` is not carried back into the record as an unknown key
    loaded = EnvironmentRecord.load(state)
    assert loaded is not None and "schema" not in loaded.extra


def test_keys_written_by_another_version_are_kept_across_load_and_save(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    state.root.mkdir()
    state.file.write_text(json.dumps({
        "schema": SCHEMA, "run_id": RUN, "profile": "dev", "status": "up",
        "ports": {"kube.apiserver": 20002},
        "future_feature": {"nested": [1, 2, 3]}, "reaped_at": 1700000009.0}))

    record = EnvironmentRecord.load(state)
    assert record is not None
    assert record.extra == {"future_feature": {"nested": [1, 2, 3]},
                            "reaped_at": 1700000009.0}
    assert record.ports == {"kube.apiserver": 20002}

    record.stopped()
    record.save(state)
    on_disk = json.loads(state.file.read_text())
    assert on_disk["future_feature"] == {"nested": [1, 2, 3]}
    assert on_disk["reaped_at"] == 1700000009.0
    assert on_disk["status"] == "down"
    assert "extra" not in on_disk  # unknown keys stay top-level, as they were written


def test_a_known_field_wins_over_an_extra_key_of_the_same_name() -> None:
    record = full_record(extra={"profile": "stale", "other": 1})
    out = record.to_dict()
    assert out["profile"] == "staging" and out["other"] == 1


def test_a_record_marked_down_by_the_reaper_loads_down_with_its_mark(tmp_path: Path) -> None:
    """The reaper edits environment.json without this class: what it writes must load."""
    state = StateDir(tmp_path / "state")
    full_record().save(state)
    _mark_state_down(state.root, RUN)

    record = EnvironmentRecord.load(state)
    assert record is not None
    assert record.status is Status.DOWN
    assert isinstance(record.extra.get("reaped_at"), float)
    assert record.processes == full_record().processes  # the reaper only changes status


def test_a_missing_status_reads_as_down() -> None:
    record = EnvironmentRecord.from_dict({"run_id": RUN, "profile": "dev"})
    assert record.status is Status.DOWN and not record.is_up


@pytest.mark.parametrize("data", [
    {"profile": "dev", "status": "up"},
    {"run_id": "", "profile": "dev"},
    {"run_id": RUN, "status": "up"},
    {"run_id": RUN, "profile": None},
], ids=["no-run-id", "empty-run-id", "no-profile", "null-profile"])
def test_a_record_without_run_id_or_profile_is_refused(tmp_path: Path, data: dict) -> None:
    with pytest.raises(HarnessError, match=r"without run_id/profile.*down --purge"):
        EnvironmentRecord.from_dict(data)

    state = StateDir(tmp_path / "state")
    state.root.mkdir()
    state.file.write_text(json.dumps({"schema": SCHEMA, **data}))
    with pytest.raises(HarnessError, match=r"without run_id/profile"):
        EnvironmentRecord.load(state)


def test_an_absent_file_loads_as_none(tmp_path: Path) -> None:
    assert EnvironmentRecord.load(StateDir(tmp_path / "never-created")) is None
    state = StateDir(tmp_path / "locked-only")
    with state.lock():  # `up` loads the record while holding the state dir's lock
        assert [p.name for p in state.root.iterdir()] == [".lock"]
        assert EnvironmentRecord.load(state) is None


def test_a_foreign_directory_or_another_schema_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    with pytest.raises(HarnessError, match="not a heracles-harness state directory"):
        EnvironmentRecord.load(StateDir(foreign))

    state = StateDir(tmp_path / "old")
    state.root.mkdir()
    state.file.write_text(json.dumps({"schema": SCHEMA + 1, "run_id": RUN, "profile": "dev"}))
    with pytest.raises(HarnessError, match="incompatible heracles-harness"):
        EnvironmentRecord.load(state)


# ---- transitions ------------------------------------------------------------------------------
def test_a_fresh_record_goes_starting_then_up_with_its_endpoints() -> None:
    record = EnvironmentRecord.fresh(None, RUN, "dev", 60.0, None)
    assert record.status is Status.DOWN and not record.is_up
    assert record.ports == {} and record.processes == {} and record.endpoints == {}
    assert record.time_scale == 60.0 and record.vault_values is None
    assert record.created > 0

    record.begin_start()
    assert record.status is Status.STARTING and not record.is_up

    endpoints = {"kube-apiserver": "https://127.0.0.1:20002", "vault": "http://127.0.0.1:20003"}
    record.started(endpoints)
    assert record.status is Status.UP and record.is_up
    assert record.endpoints == endpoints
    endpoints["vault"] = "changed by the caller afterwards"
    assert record.endpoints["vault"] == "http://127.0.0.1:20003"  # a copy was stored


def test_stopped_goes_down_clears_processes_and_keeps_ports() -> None:
    record = full_record()
    record.stopped()
    assert record.status is Status.DOWN and not record.is_up
    assert record.processes == {}
    # Ports are offered again to the next run in this state directory.
    assert record.ports == full_record().ports


def test_a_failed_fresh_start_is_rolled_back_to_down_without_processes() -> None:
    record = full_record(status=Status.DOWN)
    record.begin_start()
    record.start_failed(was_live=False)
    assert record.status is Status.DOWN
    assert record.processes == {}


def test_a_failed_repair_leaves_the_environment_up_with_its_processes() -> None:
    record = full_record(status=Status.UP)
    record.begin_start()
    record.start_failed(was_live=True)
    assert record.status is Status.UP and record.is_up
    assert record.processes == full_record().processes


@pytest.mark.parametrize("status", [Status.STARTING, Status.UP, Status.DOWN])
def test_begin_start_is_allowed_from_any_status(status: Status) -> None:
    record = full_record(status=status)
    record.begin_start()
    assert record.status is Status.STARTING


@pytest.mark.parametrize("status", [Status.UP, Status.DOWN])
def test_started_outside_starting_is_a_record_error(status: Status) -> None:
    record = full_record(status=status)
    with pytest.raises(RecordError, match=rf"run {RUN}: started while {status}"):
        record.started({"x": "y"})
    assert record.status is status
    assert record.endpoints == full_record().endpoints  # unchanged


@pytest.mark.parametrize("status", [Status.UP, Status.DOWN])
@pytest.mark.parametrize("was_live", [True, False])
def test_start_failed_outside_starting_is_a_record_error(status: Status,
                                                        was_live: bool) -> None:
    record = full_record(status=status)
    with pytest.raises(RecordError, match=rf"run {RUN}: start failed while {status}"):
        record.start_failed(was_live=was_live)
    assert record.status is status
    assert record.processes == full_record().processes  # unchanged


def test_record_error_is_a_harness_error() -> None:
    assert issubclass(RecordError, HarnessError)


def test_fresh_offers_the_previous_ports_but_starts_everything_else_over() -> None:
    previous = full_record()
    record = EnvironmentRecord.fresh(previous, "20250102000000-def456", "dev", 1.0,
                                     "/other/values.yaml")
    assert record.run_id == "20250102000000-def456" and record.profile == "dev"
    assert record.status is Status.DOWN
    assert record.ports == previous.ports
    assert record.processes == {} and record.endpoints == {} and record.components == []
    assert record.time_scale == 1.0 and record.vault_values == "/other/values.yaml"
    assert record.created > previous.created
    assert record.extra == previous.extra  # unknown keys travel with the state file

    # Its containers are its own: reserving ports for the new run leaves the old alone.
    record.ports["kube.apiserver"] = 29999
    record.extra["new"] = True
    assert previous.ports["kube.apiserver"] == 20002
    assert "new" not in previous.extra


# ---- questions ----------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> RunRegistry:
    return RunRegistry(tmp_path / "reg")


@pytest.mark.parametrize(("status", "live"), [
    (Status.UP, True), (Status.STARTING, True), (Status.DOWN, False)])
def test_a_registered_run_is_live_only_while_up_or_starting(
        tmp_path: Path, registry: RunRegistry, status: Status, live: bool) -> None:
    registry.register(RUN, tmp_path / "state", "session")
    assert registry.get(RUN) is not None
    assert full_record(status=status).is_live(registry) is live


@pytest.mark.parametrize("status", [Status.UP, Status.STARTING])
def test_an_unregistered_run_is_not_live(tmp_path: Path, registry: RunRegistry,
                                         status: Status) -> None:
    registry.register("20240101000000-000000", tmp_path / "state", "session")  # another run
    assert not full_record(status=status).is_live(registry)


def test_a_forgotten_run_stops_being_live(tmp_path: Path, registry: RunRegistry) -> None:
    record = full_record(status=Status.UP)
    registry.register(RUN, tmp_path / "state", "detached")
    assert record.is_live(registry)
    registry.forget(RUN)
    assert not record.is_live(registry)


def test_running_profile_is_the_profile_of_an_up_record_only(tmp_path: Path) -> None:
    root = tmp_path / "state"
    assert running_profile(root) is None  # nothing there yet

    state = StateDir(root)
    for status in (Status.STARTING, Status.DOWN):
        full_record(profile="prod", status=status).save(state)
        assert running_profile(root) is None, status

    full_record(profile="prod", status=Status.UP).save(state)
    assert running_profile(root) == "prod"


def test_running_profile_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "somebody-elses.txt").write_text("x")
    with pytest.raises(HarnessError, match="not a heracles-harness state directory"):
        running_profile(tmp_path)
