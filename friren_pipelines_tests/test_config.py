import pytest

from friren_pipelines.config import ConfigError, load_settings


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings({})
    assert settings.source == "synthetic"
    assert settings.postgres_url is None and settings.home.name == "warehouse"


def test_a_bad_source_names_the_variable_and_the_allowed_values() -> None:
    with pytest.raises(
        ConfigError, match=r"FRIREN_SOURCE='bloomberg'.*synthetic, csv, yfinance, alpaca"
    ):
        load_settings({"FRIREN_SOURCE": "bloomberg"})


def test_a_bad_database_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({"FRIREN_POSTGRES_URL": "mysql://user:hunter2@db/x"})
    assert "FRIREN_POSTGRES_URL" in str(error.value) and "hunter2" not in str(error.value)


def test_alpaca_source_needs_both_keys_and_never_prints_them() -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_SECRET_KEY"):
        load_settings({"FRIREN_SOURCE": "alpaca", "ALPACA_API_KEY_ID": "PKTESTKEY"})
    settings = load_settings(
        {"FRIREN_SOURCE": "alpaca", "ALPACA_API_KEY_ID": "PKID", "ALPACA_API_SECRET_KEY": "s3cr3t"}
    )
    assert "s3cr3t" not in repr(settings) and "PKID" not in repr(settings)


def test_resources_never_print_secrets() -> None:
    from friren_pipelines.portfolio.resources import BrokerResource
    from friren_pipelines.resources import BarSourceResource, StorageResource

    shown = repr(StorageResource(home="/x", postgres_url="postgresql://u:hunter2@db/x"))
    shown += repr(BarSourceResource(alpaca_key_id="PKID123", alpaca_secret_key="s3cr3t"))
    shown += repr(BrokerResource(alpaca_key_id="PKID123", alpaca_secret_key="s3cr3t"))
    assert "hunter2" not in shown and "s3cr3t" not in shown and "PKID123" not in shown
