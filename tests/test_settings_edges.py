"""Settings at the edges: every bad option, variable or URL parameter is a ConfigurationError
naming it; timeouts never round down to "none"; libpq URL parameters work; passwords hidden."""

from __future__ import annotations

import math
import traceback
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from asyncdal import ConfigurationError, Database, QueryTimeoutError, Settings
from asyncdal._config import timeout_ms
from asyncdal._urls import mask_url

SECRET = "qu3ry-Pa55word"
URL = "postgresql://app@db.example.org:5432/app"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"pool_sise": 5}, "pool_sise"),
        ({"pool_size": "5"}, "pool_size"),
        ({"pool_size": 5.0}, "pool_size"),
        ({"pool_size": True}, "pool_size"),
        ({"max_overflow": None}, "max_overflow"),
        ({"statement_timeout": math.nan}, "statement_timeout"),
        ({"statement_timeout": math.inf}, "statement_timeout"),
        ({"statement_timeout": 10**7}, "statement_timeout"),
        ({"statement_timeout": "5"}, "statement_timeout"),
        ({"command_timeout": 0}, "command_timeout"),
        ({"pool_timeout": math.nan}, "pool_timeout"),
        ({"pool_timeout": -math.inf}, "pool_timeout"),
        ({"connect_timeout": math.inf}, "connect_timeout"),
        ({"pool_recycle": 0}, "pool_recycle"),
        ({"pool_recycle": math.nan}, "pool_recycle"),
        ({"pool_pre_ping": "yes"}, "pool_pre_ping"),
        ({"echo": 1}, "echo"),
        ({"application_name": 7}, "application_name"),
        ({"application_name": "a\x00b"}, "application_name"),
    ],
)
def test_every_bad_option_is_a_configuration_error_naming_it(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_url(URL, **options)
    with pytest.raises(ConfigurationError, match=named):
        Database.from_url(URL, **options)


def test_unknown_override_in_from_env_is_named() -> None:
    with pytest.raises(ConfigurationError, match="pool_sise"):
        Settings.from_env({"DATABASE_URL": URL}, pool_sise=3)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ASYNCDAL_STATEMENT_TIMEOUT", "nan"),
        ("ASYNCDAL_POOL_TIMEOUT", "inf"),
        ("ASYNCDAL_POOL_TIMEOUT", "-1"),
        ("ASYNCDAL_COMMAND_TIMEOUT", "soon"),
        ("ASYNCDAL_ECHO", "2"),
    ],
)
def test_bad_environment_variables_are_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"(?i){variable.removeprefix('ASYNCDAL_')}"):
        Settings.from_env({"DATABASE_URL": URL, variable: value})


@pytest.mark.parametrize(
    ("seconds", "ms"), [(0.0004, 1), (0.1, 100), (1.5, 1500), (0.0011, 2), (2.5e-9, 1)]
)
def test_timeouts_are_rounded_up_never_down_to_none(seconds: float, ms: int) -> None:
    assert timeout_ms(seconds) == ms


async def test_a_tiny_statement_timeout_reaches_the_server_as_1ms(migrated_url: str) -> None:
    async with Database.from_url(migrated_url, statement_timeout=0.0004) as db:
        try:
            async with db.session() as s:
                shown = await s.scalar(text("SHOW statement_timeout"))
        except QueryTimeoutError:
            shown = "1ms"  # even SHOW took over a millisecond: a timeout is in force, not none
    assert shown == "1ms"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("bogus=1", "bogus"),
        ("sslmode=sometimes", "sslmode"),
        ("sslmode=require&sslmode=disable", "sslmode"),
        ("sslrootcert=/nonexistent/root.crt&sslmode=verify-ca", "sslrootcert"),
        ("target_session_attrs=whatever", "target_session_attrs"),
        ("connect_timeout=0", "connect_timeout"),
        ("connect_timeout=abc", "connect_timeout"),
        ("application_name=a%00b", "application_name"),
    ],
)
def test_bad_url_parameters_are_named(query: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Database.from_url(f"{URL}?{query}")


def test_libpq_parameters_are_translated() -> None:
    settings = Settings.from_url(
        f"{URL}?application_name=billing&connect_timeout=3&sslmode=disable"
        "&target_session_attrs=read-write&options=-c%20search_path%3Dapp"
    )
    assert settings.application_name == "billing"
    assert settings.connect_timeout == 3.0
    db = Database(settings)
    assert db.engine.url.query == {}
    with pytest.raises(ConfigurationError, match="application_name is given twice"):
        Settings.from_url(f"{URL}?application_name=billing", application_name="other")


def test_password_in_the_query_is_masked_everywhere() -> None:
    url = f"{URL}?password={SECRET}&sslmode=disable"
    settings = Settings.from_url(url)
    db = Database(settings)
    assert db.engine.url.password == SECRET  # still used to connect
    shown = [repr(settings), str(settings), repr(db), str(db.url), mask_url(url)]
    for text_ in shown:
        assert SECRET not in text_
    assert "***" in mask_url(url)
    assert make_url(url).query["password"] == SECRET  # the raw URL did carry it


def test_configuration_errors_never_echo_a_password() -> None:
    for url in (
        f"postgresql://app:{SECRET}@h/db?bogus=1",
        f"postgresql://app@h/db?password={SECRET}&bogus=1",
        f"postgresql://app:{SECRET}@h/db?password=other",
    ):
        with pytest.raises(ConfigurationError) as info:
            Settings.from_url(url)
        assert SECRET not in "".join(traceback.format_exception(info.value))


async def test_transaction_with_a_bad_isolation_type_is_a_configuration_error(
    committed_db: Database,
) -> None:
    async def noop(s: object) -> None:
        return None

    for bad in (1, None.__class__, b"SERIALIZABLE"):
        with pytest.raises(ConfigurationError, match="isolation"):
            await committed_db.transaction(noop, isolation=bad)  # type: ignore[arg-type]
    for retries in (True, 2.0, "3"):
        with pytest.raises(ConfigurationError, match="retries"):
            await committed_db.transaction(noop, retries=retries)  # type: ignore[arg-type]
