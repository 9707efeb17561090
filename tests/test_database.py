"""The database's pieces that need no running server: WAL arithmetic the drills count
loss with, the files rendered from the credentials, the backup rules' unit tests, the
components' place in the profiles."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.backends.local.profiles import PROFILE_COMPONENTS, resolve_components
from harness.db.config import RepoConfig, write_identities
from harness.db.credentials import BackupKeys, new_backup_keys, store_object
from harness.db.postgres import SOCKET_LIMIT, as_db_user, socket_dir
from harness.drills import DRILLS
from harness.drills.database import lsn_int, segment_end
from harness.rules import load_rules
from harness.rules.promtool import companion_test
from harness.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "harness" / "fixtures" / "database"


def test_wal_positions_and_segment_ends():
    assert lsn_int("0/0") == 0
    assert lsn_int("1/A0") == (1 << 32) + 0xA0
    # segment 3 of log 0 ends where segment 4 begins (16 MiB segments)
    assert segment_end("000000010000000000000003") == 4 * 16 * 2**20
    # the timeline does not move positions; the log number does
    assert segment_end("000000050000000100000000") == (1 << 32) + 16 * 2**20
    assert lsn_int("0/3FFFFFF") < segment_end("000000010000000000000003")


def test_backup_keys_look_like_s3_keys_and_differ_each_time():
    a, b = new_backup_keys(), new_backup_keys()
    assert len(a.access_key) == 20 and a.access_key.isalnum() and a.access_key.isupper()
    assert len(a.secret_key) == 40
    assert a != b


def test_rendered_files_carry_the_keys_and_are_private(tmp_path):
    keys = BackupKeys("AKIAEXAMPLEEXAMPLE12", "s" * 40)
    write_identities(tmp_path / "identities.json", keys)
    doc = json.loads((tmp_path / "identities.json").read_text())
    assert doc["identities"][0]["credentials"] == [
        {"accessKey": keys.access_key, "secretKey": keys.secret_key}]
    assert oct((tmp_path / "identities.json").stat().st_mode & 0o777) == "0o600"
    repo = RepoConfig(s3_port=18333, ca_file=tmp_path / "ca.crt", pg_data=tmp_path / "d",
                      pg_port=5432, pg_socket=tmp_path / "run", work_dir=tmp_path / "w",
                      archive_timeout=10)
    repo.write(tmp_path / "pgbackrest.conf", keys)
    conf = (tmp_path / "pgbackrest.conf").read_text()
    assert "repo1-s3-endpoint=localhost\n" in conf  # 2.45 matches DNS names only
    assert f"repo1-s3-key-secret={keys.secret_key}\n" in conf
    assert "io-timeout=5\n" in conf and "archive-timeout=10\n" in conf
    assert oct((tmp_path / "pgbackrest.conf").stat().st_mode & 0o777) == "0o600"
    assert RepoConfig.from_json(json.loads(json.dumps(repo.to_json()))) == repo


def test_postgres_runs_unprivileged_and_its_socket_path_fits(tmp_path, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert as_db_user(["postgres", "-D", "x"]) == ["postgres", "-D", "x"]
    monkeypatch.setattr("os.geteuid", lambda: 0)
    wrapped = as_db_user(["postgres"])
    assert wrapped[:2] == ["unshare", "--user"] and wrapped[-1] == "postgres"
    assert socket_dir(tmp_path) == tmp_path / "db" / "run"
    deep = tmp_path / ("x" * 120)
    short = socket_dir(deep)
    assert len(str(short)) + 16 <= SOCKET_LIMIT and short == socket_dir(deep)


def test_the_database_store_is_the_spec_store_made_for_tls():
    class TlsVault:
        tls = True

        def ca_bundle(self) -> bytes:
            return b"-----BEGIN CERTIFICATE-----\n"

    obj = store_object(TlsVault())
    vault = obj["spec"]["provider"]["vault"]
    assert vault["server"] == "https://vault.vault.svc.cluster.local:8200"
    assert vault["caBundle"] and vault["auth"]["kubernetes"]["role"] == "external-secrets"
    externals = [d for d in yaml.safe_load_all((FIXTURES / "external-secrets.yaml").read_text())
                 if d["kind"] == "ExternalSecret"]
    assert {d["metadata"]["name"] for d in externals} == {"postgres-credentials",
                                                          "backup-credentials"}
    assert all(d["spec"]["secretStoreRef"]["name"] == obj["metadata"]["name"]
               for d in externals)


def test_prod_runs_the_database_and_staging_can():
    assert {"s3", "db"} <= set(PROFILE_COMPONENTS["prod"])
    assert "db" not in PROFILE_COMPONENTS["staging"]
    assert resolve_components(["db"])[-2:] == ["s3", "db"]
    assert {"vault", "eso", "kube"} <= set(resolve_components(["db"]))
    for name in ("db-pitr", "db-region-loss", "platform-loss"):
        assert DRILLS[name].profiles[0] == "prod"


def test_every_backup_alert_has_a_written_promtool_test():
    rules = load_rules([FIXTURES / "database.rules.yaml"])
    assert {r.name for r in rules} == {"DatabaseBaseBackupTooOld",
                                       "DatabaseWalArchivingFailing",
                                       "BackupReplicationLagHigh"}
    assert all(companion_test(r) == FIXTURES / "database.rules.test.yaml" for r in rules)


def test_the_backup_rules_pass_their_promtool_tests_and_a_wrong_for_fails(tmp_path):
    from harness.rules.promtool import run_promtool_tests
    from harness.toolchain import Toolchain

    promtool = str(Toolchain(Settings().cache_dir).binary("prometheus", "promtool"))
    rules = load_rules([FIXTURES / "database.rules.yaml"])
    results = run_promtool_tests(rules, tmp_path / "ok", promtool)
    assert {r.rule.name: r.status for r in results} == {
        "DatabaseBaseBackupTooOld": "passed", "DatabaseWalArchivingFailing": "passed",
        "BackupReplicationLagHigh": "passed"}
    # the same tests against rules whose `for:` changed must fail
    changed = tmp_path / "changed"
    changed.mkdir()
    text = (FIXTURES / "database.rules.yaml").read_text().replace("for: 5m", "for: 4m")
    (changed / "database.rules.yaml").write_text(text)
    (changed / "database.rules.test.yaml").write_text(
        (FIXTURES / "database.rules.test.yaml").read_text())
    results = run_promtool_tests(load_rules([changed / "database.rules.yaml"]),
                                 tmp_path / "bad", promtool)
    assert {r.status for r in results} == {"failed"}


def test_a_database_drill_gets_the_database_in_an_environment_it_starts(tmp_path):
    from harness.drills.runner import plan_drill

    settings = Settings(state_dir=tmp_path / "state", registry_dir=tmp_path / "registry")
    plan = plan_drill("db-pitr", settings)
    assert plan.settings.profile == "prod" and not plan.reuse
    staging = plan_drill("db-pitr", settings, "staging").settings
    assert staging.profile == "staging"
    assert staging.components is not None and staging.components[-1] == "db"
    assert set(PROFILE_COMPONENTS["staging"]) <= set(staging.components)
