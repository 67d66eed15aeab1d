import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from friren_pipelines.config import (
    EARLIEST_HISTORY_START,
    LOT_METHODS,
    VARIABLES,
    ConfigError,
    apply_dagster_environment,
    configuration_table,
    load_settings,
)
from friren_pipelines.core import calendar


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


README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_configuration_table() -> str:
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return "".join(f"{line}\n" for line in section.splitlines() if line.startswith("|"))


def test_the_readme_configuration_table_is_the_declared_one() -> None:
    assert _readme_configuration_table() == configuration_table()


class _Recorder(dict[str, str]):
    """An empty environment that records which variables were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: object = None) -> Any:
        self.asked.add(name)
        return super().get(name, default)


def test_load_reads_every_declared_variable_and_no_other() -> None:
    env = _Recorder()
    load_settings(env)
    assert env.asked == {variable.name for variable in VARIABLES}


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        # A typo in a closed set never falls back to a default (synthetic data, the demo).
        ("FRIREN_SOURCE", "yahoo", "synthetic, csv, yfinance, alpaca"),
        ("FRIREN_BROKER", "dmeo", "demo, csv, alpaca"),
        ("FRIREN_LOT_METHOD", "lifo", "fifo, average"),
        ("ALPACA_DATA_FEED", "sipp", "iex, sip, delayed_sip, otc"),
        # Numbers outside their range are refused at load, not where they are used.
        ("FRIREN_RISK_FREE_RATE", "-5", "an annual fraction above -1"),
        ("FRIREN_RISK_FREE_RATE", "-1", "an annual fraction above -1"),
        ("FRIREN_SQL_TIMEOUT_SECONDS", "0", "seconds > 0"),
        ("FRIREN_SQL_TIMEOUT_SECONDS", "soon", "is not a number"),
    ],
)
def test_a_bad_value_stops_the_load_naming_the_variable_and_what_it_accepts(
    name: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigError, match=f"{name}='{value}'.*{accepted}"):
        load_settings({name: value})


def test_a_resource_kind_outside_its_set_is_refused_never_served_as_synthetic_data() -> None:
    from friren_pipelines.portfolio.resources import BrokerResource
    from friren_pipelines.resources import BarSourceResource

    with pytest.raises(ConfigError, match=r"'yahoo'.*synthetic, csv, yfinance, alpaca"):
        BarSourceResource(kind="yahoo").open()
    with pytest.raises(ConfigError, match=r"'dmeo'.*demo, csv, alpaca"):
        BrokerResource(kind="dmeo").open()


def test_the_declared_lot_methods_are_the_ledgers_and_a_backfill_run_is_one_event_batch() -> None:
    from friren_pipelines.core.lots import METHODS
    from friren_pipelines.market_data.backfill import MAX_KEYS_PER_RUN

    assert LOT_METHODS == METHODS
    assert load_settings({}).dagster_event_batch_size == MAX_KEYS_PER_RUN


def test_numbers_and_counts_refuse_what_they_cannot_use() -> None:
    with pytest.raises(ConfigError, match=r"FRIREN_RISK_FREE_RATE='inf' is not a number"):
        load_settings({"FRIREN_RISK_FREE_RATE": "inf"})
    with pytest.raises(ConfigError, match="DAGSTER_EVENT_BATCH_SIZE='-1'"):
        load_settings({"DAGSTER_EVENT_BATCH_SIZE": "-1"})
    assert load_settings({"FRIREN_RISK_FREE_RATE": "0.05"}).risk_free_rate == 0.05


def test_the_csv_broker_needs_its_file_and_the_alpaca_broker_its_keys() -> None:
    with pytest.raises(ConfigError, match="FRIREN_BROKER=csv needs FRIREN_BROKER_CSV"):
        load_settings({"FRIREN_BROKER": "csv"})
    with pytest.raises(ConfigError, match="FRIREN_BROKER=alpaca needs ALPACA_API_KEY_ID"):
        load_settings({"FRIREN_BROKER": "alpaca"})


def test_no_secret_is_in_the_settings_repr() -> None:
    settings = load_settings(
        {
            "FRIREN_POSTGRES_URL": "postgresql://u:hunter2@db/x",
            "FRIREN_REDIS_URL": "redis://:redispass@cache:6379/0",
            "FRIREN_DAGSTER_POSTGRES_URL": "postgresql+psycopg2://u:dagsterpass@db/dagster",
        }
    )
    shown = repr(settings)
    assert "hunter2" not in shown and "redispass" not in shown and "dagsterpass" not in shown


def test_secrets_reach_dagster_as_the_names_of_their_variables() -> None:
    import dagster as dg

    from friren_pipelines.resources import build_resources

    settings = load_settings(
        {
            "FRIREN_POSTGRES_URL": "postgresql://u:hunter2@db/x",
            "FRIREN_REDIS_URL": "redis://cache:6379/0",
            "FRIREN_BROKER": "alpaca",
            "ALPACA_API_KEY_ID": "PKID123",
            "ALPACA_API_SECRET_KEY": "s3cr3t",
        }
    )
    resources = build_resources(settings)
    shown = {
        name: resource.model_dump(exclude={"live_account"}) for name, resource in resources.items()
    }
    shown["live_account"] = resources["broker"].model_dump()["live_account"]
    values = [value for fields in shown.values() for value in fields.values()]
    for secret in ("hunter2", "PKID123", "s3cr3t", "redis://"):
        assert not any(secret in repr(value) for value in values), secret
    assert isinstance(resources["storage"].model_dump()["postgres_url"], dg.EnvVar)
    assert set(shown["live_account"]) >= {"alpaca_key_id", "redis_url"}
    assert shown["live_account"]["alpaca_key_id"] == "ALPACA_API_KEY_ID"


def test_the_dagster_environment_is_set_for_dagster_only_by_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DAGSTER_HOME", "DAGSTER_EVENT_BATCH_SIZE", *_EVENT_SWITCH):
        monkeypatch.setenv(name, "")  # restored after the test
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"DAGSTER_EVENT_BATCH_SIZE": "500"})
    home = apply_dagster_environment(settings)
    assert home == tmp_path / "warehouse" / ".dagster" and home.is_dir()
    assert os.environ["DAGSTER_HOME"] == str(home)
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "500"
    assert os.environ[_EVENT_SWITCH[0]] == "1"


_EVENT_SWITCH = ("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS",)


def test_the_history_start_is_a_date_from_the_calendars_first_session() -> None:
    assert load_settings({}).history_start == dt.date(2025, 1, 1)
    assert load_settings({"FRIREN_HISTORY_START": "1990-01-02"}).history_start == dt.date(
        1990, 1, 2
    )
    assert EARLIEST_HISTORY_START == calendar.CALENDAR_START
    for bad in ("2025-13-01", "last year", "1989-12-29"):
        with pytest.raises(ConfigError, match=f"FRIREN_HISTORY_START='{bad}' is not valid"):
            load_settings({"FRIREN_HISTORY_START": bad})
