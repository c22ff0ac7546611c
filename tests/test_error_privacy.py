"""Errors tell what, not whose (issue 19): no row data in a message, a log, a span or a body.

PostgreSQL's DETAIL quotes the row ("Key (email)=(...) already exists", "Failing row contains
(...)") and its primary message may quote a value ("invalid input syntax for type integer:
..."). A value planted in the database or in the statement must reach none of ``str()``,
``repr()``, a log record or an HTTP body; it stays on the exception (``.detail``,
``.server_message``) for code that asks. The message still names the constraint, the table
and the columns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from asyncdal import (
    AsyncDALError,
    CheckViolationError,
    Database,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    QueryError,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Order
from asyncdal.fastapi import install_error_handlers

SECRET = "planted-7f3a9c"

Provoke = Callable[[Database], Awaitable[Any]]


async def _duplicate(db: Database) -> None:
    async with db.session() as s:
        await UserRepository(s).create(username="again", email=f"{SECRET}@example.org")


async def _check(db: Database) -> None:
    async with db.session() as s:  # a username the check refuses, the row quoted in DETAIL
        await s.execute(insert(User).values(username="", email=f"{SECRET}-2@example.org"))


async def _not_null(db: Database) -> None:
    async with db.session() as s:
        await s.execute(insert(User).values(username=f"{SECRET}-n", email=None))


async def _foreign_key(db: Database) -> None:
    async with db.session() as s:
        await s.execute(insert(Order).values(user_id=987654321, status="pending", total=0))


async def _server_quotes_the_value(db: Database) -> None:
    async with db.read() as s:  # 22P02: invalid input syntax for type integer: "<value>"
        await s.scalar(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": SECRET})


async def _driver_quotes_the_value(db: Database) -> None:
    async with db.read() as s:  # asyncpg refuses to encode a str for an integer parameter
        await s.scalar(text("SELECT CAST(:v AS integer)"), {"v": SECRET})


CASES: dict[str, tuple[Provoke, type[AsyncDALError]]] = {
    "duplicate": (_duplicate, DuplicateError),
    "check": (_check, CheckViolationError),
    "not null": (_not_null, CheckViolationError),
    "foreign key": (_foreign_key, ForeignKeyError),
    "server quotes the value": (_server_quotes_the_value, QueryError),
    "driver quotes the value": (_driver_quotes_the_value, InvalidQueryError),
}
#: The cases whose server or driver text holds the planted value.
QUOTING = {"duplicate", "check", "not null", "server quotes the value", "driver quotes the value"}


@pytest.fixture
async def planted(committed_db: Database) -> Database:
    async with committed_db.session() as s:
        await UserRepository(s).create(username=f"{SECRET}-u", email=f"{SECRET}@example.org")
    return committed_db


@pytest.mark.parametrize("case", list(CASES))
async def test_no_planted_value_in_message_repr_or_logs(
    planted: Database, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    provoke, expected = CASES[case]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(expected) as caught:
        await provoke(planted)
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.name
        assert SECRET not in (record.exc_text or "")
    if case in QUOTING:  # what the server said is kept, for code that wants it
        assert SECRET in (error.detail or "") + (error.server_message or "")


async def test_conflicts_name_constraint_table_and_columns(planted: Database) -> None:
    with pytest.raises(DuplicateError) as duplicate:
        await _duplicate(planted)
    assert duplicate.value.constraint == "uq_users_email"
    assert (duplicate.value.table, duplicate.value.columns) == ("users", ("email",))
    assert "uq_users_email" in str(duplicate.value)
    assert "users" in str(duplicate.value)
    assert "email" in str(duplicate.value)

    with pytest.raises(CheckViolationError) as not_null:
        await _not_null(planted)
    assert (not_null.value.table, not_null.value.columns) == ("users", ("email",))

    with pytest.raises(ForeignKeyError) as foreign:
        await _foreign_key(planted)
    assert foreign.value.table == "orders"
    assert foreign.value.columns == ("user_id",)
    assert (foreign.value.referred_table, foreign.value.referred_columns) == ("users", ("id",))


@pytest.mark.parametrize("case", list(CASES))
async def test_no_planted_value_in_an_http_body(
    planted: Database, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    provoke, _ = CASES[case]
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/provoke")
    async def route() -> None:
        await provoke(planted)

    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/provoke")
    assert response.status_code in {409, 422, 500}
    assert SECRET not in response.text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in (record.exc_text or "")
