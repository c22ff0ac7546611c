"""Settings and URLs: normalisation, validation, and the password never shown."""

from __future__ import annotations

import pytest

from asyncdal import ConfigurationError, Database, Settings

SECRET = "s3cr3t-Pa55"
URL = f"postgresql://app:{SECRET}@db.example.org:5432/app"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db",
        "postgres://u@h/db",
        "postgresql+asyncpg://u@h/db",
    ],
)
def test_urls_are_normalised_to_asyncpg(url: str) -> None:
    assert Settings.from_url(url).url.drivername == "postgresql+asyncpg"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "postgresql+psycopg://u@h/d"])
def test_other_drivers_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unsupported database URL scheme"):
        Settings.from_url(url)


def test_unparsable_url_does_not_echo_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_url(f"::not a url {SECRET}")
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("option", "value"),
    [("pool_size", 0), ("max_overflow", -1), ("pool_timeout", 0), ("statement_timeout", -1.0)],
)
def test_invalid_options_are_refused(option: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=option):
        Settings.from_url(URL, **{option: value})


def test_password_is_masked_in_settings_and_database_reprs() -> None:
    settings = Settings.from_url(URL)
    db = Database(settings)
    for shown in (repr(settings), str(settings), repr(db), str(db), str(db.url), repr(db.url)):
        assert SECRET not in shown
        assert "***" in shown
    # The real password is still used to connect.
    assert db.engine.url.password == SECRET


def test_from_env_reads_every_variable() -> None:
    env = {
        "DATABASE_URL": URL,
        "ASYNCDAL_POOL_SIZE": "3",
        "ASYNCDAL_MAX_OVERFLOW": "2",
        "ASYNCDAL_POOL_TIMEOUT": "1.5",
        "ASYNCDAL_POOL_PRE_PING": "false",
        "ASYNCDAL_STATEMENT_TIMEOUT": "2.5",
        "ASYNCDAL_APPLICATION_NAME": "svc",
        "ASYNCDAL_ECHO": "yes",
    }
    settings = Settings.from_env(env)
    assert settings.url.host == "db.example.org"
    assert settings.pool_size == 3
    assert settings.max_overflow == 2
    assert settings.capacity == 5
    assert settings.pool_timeout == 1.5
    assert settings.pool_pre_ping is False
    assert settings.statement_timeout == 2.5
    assert settings.application_name == "svc"
    assert settings.echo is True


def test_from_env_overrides_win() -> None:
    settings = Settings.from_env({"DATABASE_URL": URL, "ASYNCDAL_POOL_SIZE": "3"}, pool_size=7)
    assert settings.pool_size == 7


def test_from_env_without_url_says_so() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ASYNCDAL_POOL_SIZE", "ten"), ("ASYNCDAL_POOL_PRE_PING", "maybe")],
)
def test_from_env_names_the_bad_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({"DATABASE_URL": URL, variable: value})
