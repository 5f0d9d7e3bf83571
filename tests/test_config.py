from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from integration.cli import cli
from integration.config import load_settings
from integration.errors import ConfigError


def test_defaults_use_an_embedded_sqlite_store(tmp_path) -> None:
    settings = load_settings(home=tmp_path / "h")
    assert settings.embedded
    assert settings.store_url == f"sqlite:///{(tmp_path / 'h' / 'leadlift.db').resolve()}"
    assert settings.broker_url is None
    assert settings.fields.lead_score == "Lead_Score"


def test_a_malformed_value_names_its_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_OUTCOME_WINDOW_DAYS", "three weeks")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "LEADLIFT_OUTCOME_WINDOW_DAYS" in caught.value.message
    assert "three weeks" in caught.value.message


def test_every_bad_key_is_reported_at_once(monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_OUTCOME_WINDOW_DAYS", "0")
    monkeypatch.setenv("LEADLIFT_DATABASE_URL", "not a url")
    monkeypatch.setenv("LEADLIFT_FIELDS__LEAD_SCORE", "Lead Score!")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    for name in ("OUTCOME_WINDOW_DAYS", "DATABASE_URL", "FIELDS__LEAD_SCORE"):
        assert f"LEADLIFT_{name}" in message


def test_a_bad_secret_key_is_named_but_never_echoed(monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_SECRET_KEY", "hunter2-not-a-key")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "LEADLIFT_SECRET_KEY" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_secrets_are_masked_in_repr(monkeypatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("LEADLIFT_SECRET_KEY", key)
    monkeypatch.setenv("LEADLIFT_SALESFORCE_CLIENT_SECRET", "s3cr3t-value")
    text = repr(load_settings())
    assert key not in text and "s3cr3t-value" not in text


def test_a_shared_database_requires_an_explicit_secret_key(tmp_path) -> None:
    settings = load_settings(database_url="postgresql://db/leadlift", home=tmp_path)
    with pytest.raises(ConfigError, match="LEADLIFT_SECRET_KEY"):
        _ = settings.fernet


def test_the_embedded_store_generates_and_keeps_one_key(tmp_path) -> None:
    first = load_settings(home=tmp_path).fernet.encrypt(b"token")
    assert load_settings(home=tmp_path).fernet.decrypt(first) == b"token"
    assert oct((tmp_path / "secret.key").stat().st_mode)[-3:] == "600"


def test_yaml_file_is_read_and_environment_wins(tmp_path, monkeypatch) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text("outcome_window_days: 30\nretrain_after_days: 3\n")
    monkeypatch.setenv("LEADLIFT_CONFIG", str(path))
    monkeypatch.setenv("LEADLIFT_RETRAIN_AFTER_DAYS", "9")
    settings = load_settings()
    assert settings.outcome_window_days == 30
    assert settings.retrain_after_days == 9


def test_a_missing_config_file_is_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LEADLIFT_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match="LEADLIFT_CONFIG"):
        load_settings()


def test_nested_field_names_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_FIELDS__LEAD_SCORE", "Acme_Score")
    assert load_settings().fields.lead_score == "Acme_Score"


def test_the_cli_fails_fast_with_the_bad_key_and_exit_code_2(monkeypatch) -> None:
    monkeypatch.setenv("LEADLIFT_SYNC_LAG_SECONDS", "-5")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert "LEADLIFT_SYNC_LAG_SECONDS" in result.output
