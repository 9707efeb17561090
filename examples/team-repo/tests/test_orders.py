"""The orders team's own checks, written with the harness's fixtures (the `heracles_`
names, so nothing collides with the team's own fixtures). They run against whatever
environment the session has: the one `harness up` started (found through
$HERACLES_STATE_DIR) or one the session brings up."""

from __future__ import annotations

from pathlib import Path

from harness.testing import ExternalSecretsClient, Settings, VaultAdmin

ORDERS_DB = Path(__file__).resolve().parents[1] / "apps" / "orders" / "orders-db.yaml"


def test_orders_db_follows_a_rotation_in_vault(heracles_vault: VaultAdmin,
                                               heracles_eso: ExternalSecretsClient,
                                               heracles_vault_store: dict[str, str],
                                               heracles_namespace: str) -> None:
    """Our ExternalSecret, pointed at a store of the test's own, delivers the value
    Vault holds, and the rotated one after a force-sync (the runbook's way)."""
    key = f"{heracles_vault_store['prefix']}/db"
    heracles_vault.kv_put(key, password="first-value")

    def to_test_store(obj: dict) -> None:
        obj["spec"]["secretStoreRef"] = {"name": heracles_vault_store["store"],
                                         "kind": "SecretStore"}
        obj["spec"]["data"][0]["remoteRef"]["key"] = key

    heracles_eso.apply(ORDERS_DB, heracles_namespace, mutate=to_test_store)
    heracles_eso.wait_synced(heracles_namespace, "orders-db", timeout=60)
    assert heracles_eso.secret_value(heracles_namespace, "orders-db", "password") \
        == "first-value"

    heracles_vault.kv_put(key, password="rotated-value")
    heracles_eso.force_sync(heracles_namespace, "orders-db")
    heracles_eso.wait_value(heracles_namespace, "orders-db", "password", "rotated-value",
                            timeout=60)


def test_the_session_uses_the_settings_from_pyproject(heracles_settings: Settings) -> None:
    """harness_* keys in [tool.pytest.ini_options] reach the environment's settings (the
    plugin's own default time scale in a test session is 60)."""
    assert (heracles_settings.profile, heracles_settings.time_scale) == ("dev", 30.0)
