"""Errors tell what failed, not whose data: a planted value hunted in spans and 404s too.

Beyond ``test_error_privacy`` (messages, reprs, logs and bodies of the database's errors):
the same hunt through ``db.transaction``, in OpenTelemetry spans, and for the layer's own
refusals (a value its checks refuse, a filter value, a row not found).

Each case below makes the database (or the layer's own checks) refuse a statement that
carries a distinctive value: a duplicate e-mail address, a row failing a CHECK or NOT NULL
(PostgreSQL's "Failing row contains (...)"), a foreign key to a missing row ("Key
(user_id)=(...) is not present"), a value the server cannot parse, one the driver cannot send,
one the layer's checks refuse, a row that is not found. The value must not appear in the
exception's ``str``/``repr`` (except a NotFoundError's key, the caller's own), in any log record
(every logger, DEBUG), in any span or span event, nor in the HTTP response (body and headers)
``install_error_handlers`` makes of it. PostgreSQL's DETAIL stays available as ``.detail``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import insert, text

from asyncdal import (
    AsyncDALError,
    CheckViolationError,
    ConflictError,
    DALSession,
    Database,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    NotFoundError,
    QueryError,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Order, OrderRepository, Product
from asyncdal.fastapi import install_error_handlers
from asyncdal.otel import instrument

PLANT = "planted7f3a9c"
EMAIL = f"{PLANT}@example.org"
PLANT_ID = 987654321  # no such user: the foreign key's DETAIL quotes it


async def _duplicate(s: DALSession) -> None:
    await UserRepository(s).create(username="someone", email=EMAIL)


async def _check(s: DALSession) -> None:
    s.add(User(username=f"{PLANT}x", email=f"x{EMAIL}", follower_count=-1))
    await s.flush()


async def _not_null(s: DALSession) -> None:
    await s.execute(insert(User).values(username=None, email=f"n{EMAIL}"))


async def _foreign_key(s: DALSession) -> None:
    await s.execute(insert(Order).values(user_id=PLANT_ID, status="pending", total=Decimal(1)))


async def _unparsable(s: DALSession) -> None:
    # Sent as text; the server fails to parse it: SQLSTATE 22P02 quotes the value.
    await s.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": PLANT})


async def _unsendable(s: DALSession) -> None:
    # The driver refuses to encode it as the integer the server asked for (client side).
    await s.execute(text("SELECT CAST(:v AS integer)"), {"v": PLANT})


async def _layer_check(s: DALSession) -> None:
    await UserRepository(s).create(username=PLANT * 20, email=f"y{EMAIL}")


async def _filter_value(s: DALSession) -> None:
    await UserRepository(s).list(where={"follower_count": PLANT})


async def _not_found(s: DALSession) -> None:
    await UserRepository(s).by_username(PLANT)


async def _unknown_product(s: DALSession) -> None:
    await OrderRepository(s).place(PLANT_ID, {PLANT_ID: 1})


CASES: dict[str, tuple[Callable[[DALSession], Awaitable[None]], type[AsyncDALError]]] = {
    "duplicate": (_duplicate, DuplicateError),
    "check": (_check, CheckViolationError),
    "not null": (_not_null, CheckViolationError),
    "foreign key": (_foreign_key, ForeignKeyError),
    "unparsable": (_unparsable, QueryError),
    "unsendable": (_unsendable, InvalidQueryError),
    "layer check": (_layer_check, InvalidQueryError),
    "filter value": (_filter_value, InvalidQueryError),
    "not found": (_not_found, NotFoundError),
    "unknown product": (_unknown_product, NotFoundError),
}


@pytest.fixture
async def db(committed_db: Database, migrated_url: str) -> AsyncIterator[Database]:
    async with committed_db.session() as s:
        await UserRepository(s).create(username="owner", email=EMAIL)
    async with Database.from_url(migrated_url) as database:
        yield database


@pytest.fixture
def spans(db: Database) -> AsyncIterator[InMemorySpanExporter]:  # type: ignore[misc]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentation = instrument(db, tracer_provider=provider)
    yield exporter
    instrumentation.uninstrument()


def _app(db: Database) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/{case}")
    async def run(case: str) -> None:
        async with db.session() as s:
            await CASES[case][0](s)

    return app


def _span_text(spans: InMemorySpanExporter) -> str:
    said: list[str] = []
    for span in spans.get_finished_spans():
        said += [span.name, repr(dict(span.attributes or {})), str(span.status.description)]
        for ev in span.events:
            said += [ev.name, repr(dict(ev.attributes or {}))]
    return "\n".join(said)


def _planted(text: str) -> bool:
    return PLANT in text or str(PLANT_ID) in text


@pytest.mark.parametrize("case", list(CASES))
async def test_no_error_tells_whose_data_it_was(
    db: Database,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    work, expected = CASES[case]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(expected) as in_session:
        async with db.session() as s:
            await work(s)
    with pytest.raises(expected) as in_transaction:
        await db.transaction(work)
    app = _app(db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        response = await client.post(f"/{case}")
    assert response.status_code >= 400  # a QueryError is the service's bug: a 500
    said = [response.text, repr(response.headers), _span_text(spans)]
    said += [record.getMessage() for record in caplog.records]
    said += [logging.Formatter().format(record) for record in caplog.records]  # tracebacks too
    for error in (in_session.value, in_transaction.value):
        if not isinstance(error, NotFoundError):  # its key is the caller's own argument
            said += [str(error), repr(error)]
    assert not [text for text in said if _planted(text)]
    assert spans.get_finished_spans()  # the hunt looked at something


async def test_the_detail_stays_on_the_exception_for_code_that_wants_it(db: Database) -> None:
    with pytest.raises(DuplicateError) as duplicate:
        async with db.session() as s:
            await _duplicate(s)
    error = duplicate.value
    assert error.detail is not None
    assert EMAIL in error.detail
    assert (error.constraint, error.table, error.columns) == ("uq_users_email", "users", ("email",))
    assert "uq_users_email" in str(error)
    assert "users" in str(error)
    assert "email" in str(error)
    with pytest.raises(QueryError) as unparsable:
        async with db.session() as s:
            await _unparsable(s)
    assert unparsable.value.sqlstate == "22P02"


async def test_a_foreign_key_error_names_what_it_references(db: Database) -> None:
    with pytest.raises(ForeignKeyError) as info:
        async with db.session() as s:
            await _foreign_key(s)
    error = info.value
    assert (error.table, error.columns) == ("orders", ("user_id",))
    assert (error.referred_table, error.referred_columns) == ("users", ("id",))
    assert isinstance(error, ConflictError)
    # Deleting a referenced row: the same names, from the other side.
    async with db.session() as s:
        user = await UserRepository(s).create(username="buyer", email="buyer@example.org")
        product = Product(sku="FK-1", name="p", price=Decimal(1), stock=5)
        s.add(product)
        await s.flush()
        await OrderRepository(s).place(user.id, {product.id: 1})
        product_id = product.id
    with pytest.raises(ForeignKeyError) as still_used:
        async with db.session() as s:
            await s.execute(text("DELETE FROM products WHERE id = :id"), {"id": product_id})
    assert still_used.value.referred_table == "products"
    assert still_used.value.table == "order_items"
