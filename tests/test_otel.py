"""asyncdal.otel: the layer's spans and metrics, in the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.engine import make_url

from asyncdal import (
    DALSession,
    Database,
    DuplicateError,
    InvalidQueryError,
)
from asyncdal.accounts import UserRepository
from asyncdal.commerce import Product
from asyncdal.otel import Instrumentation, instrument

PASSWORD = "otel-pa55word-9c1e"  # the embedded server trusts 127.0.0.1: it is never checked
SECRET_VALUE = "bound-value-4b7d"
POOL_NAME = "db.client.connection.pool.name"
USED = {"db.client.connection.state": "used"}
IDLE = {"db.client.connection.state": "idle"}


@dataclass
class Traced:
    db: Database
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    instrumentation: Instrumentation

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def points(self, metric: str) -> list[tuple[dict[str, Any], float]]:
        data = self.metrics.get_metrics_data()
        found: list[tuple[dict[str, Any], float]] = []
        if data is None:  # nothing observed at all
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        found += [(dict(p.attributes or {}), p.value) for p in m.data.data_points]  # type: ignore[union-attr]
        return found

    def value(self, metric: str, pool: str | None = None, **attributes: str) -> float:
        """The one point of ``metric`` with ``attributes`` (and of ``pool``: main, read)."""
        matching = [
            v
            for attrs, v in self.points(metric)
            if attributes.items() <= attrs.items()
            and (pool is None or str(attrs.get(POOL_NAME, "")).endswith(f" {pool}"))
        ]
        assert len(matching) == 1, (metric, attributes, self.points(metric))
        return matching[0]


@pytest.fixture
async def traced(migrated_url: str) -> AsyncIterator[Traced]:
    """A database of its own, with a password in its URL, instrumented into memory."""
    url = make_url(migrated_url).set(password=PASSWORD)
    db = Database.from_url(url, pool_size=10, max_overflow=10, pool_timeout=5)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentation = instrument(db, tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Traced(db, spans, reader, instrumentation)
    instrumentation.uninstrument()
    await db.dispose()


def _everything_said(spans: list[ReadableSpan]) -> Iterator[str]:
    """Every string a span exports: name, attributes, events, status."""
    for span in spans:
        yield span.name
        yield repr(dict(span.attributes or {}))
        yield str(span.status.description)
        for ev in span.events:
            yield ev.name
            yield repr(dict(ev.attributes or {}))


def _assert_nothing_leaks(spans: list[ReadableSpan]) -> None:
    said = "\n".join(_everything_said(spans))
    assert PASSWORD not in said
    assert SECRET_VALUE not in said


def test_import_asyncdal_does_not_import_opentelemetry() -> None:
    code = "import asyncdal, sys; print(sorted(m for m in sys.modules if 'opentelemetry' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


async def test_a_gather_of_three_reads_is_one_span_with_three_children(traced: Traced) -> None:
    async def read(s: DALSession) -> str:
        return str(await s.scalar(select(bindparam("v", SECRET_VALUE))))

    assert await traced.db.gather(read, read, read, limit=2) == (SECRET_VALUE,) * 3

    [parent] = traced.named("asyncdal.gather")
    children = traced.named("asyncdal.gather.read")
    assert len(children) == 3
    assert parent.context is not None
    assert parent.parent is None
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == parent.context.span_id
        assert child.context is not None
        assert child.context.trace_id == parent.context.trace_id
    attrs = dict(parent.attributes or {})
    url = traced.db.url
    assert attrs["db.system"] == attrs["db.system.name"] == "postgresql"
    assert attrs["db.namespace"] == url.database
    assert attrs["server.address"] == url.host
    assert attrs["server.port"] == (url.port or 5432)
    assert attrs["asyncdal.gather.reads"] == 3
    assert attrs["asyncdal.gather.consistent"] is False
    indexes = [dict(c.attributes or {})["asyncdal.read.index"] for c in children]
    assert sorted(int(str(i)) for i in indexes) == [0, 1, 2]
    for child in children:
        assert set(Instrumentation.ATTRIBUTES["asyncdal.gather.read"]) <= set(
            child.attributes or {}
        )
        assert child.attributes["asyncdal.read.queue_wait_s"] >= 0  # type: ignore[index, operator]
        assert child.attributes["asyncdal.read.run_s"] >= 0  # type: ignore[index, operator]
    # Each read's statement span (the SQLAlchemy instrumentation) hangs under its read.
    child_ids = {c.context.span_id for c in children if c.context is not None}
    statements = [s for s in traced.finished() if s.name.startswith("SELECT")]
    assert len(statements) == 3
    assert {s.parent.span_id for s in statements if s.parent is not None} == child_ids
    _assert_nothing_leaks(traced.finished())


async def test_a_transaction_with_one_serialization_failure_shows_two_attempts(
    traced: Traced, committed_db: Database
) -> None:
    async with committed_db.session() as s:
        product = Product(sku="OTEL-1", name="otel", price=Decimal("1.00"), stock=10)
        s.add(product)
        await s.flush()
        product_id = product.id
    calls = 0

    async def take_one(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        stock = await s.scalar(select(Product.stock).where(Product.id == product_id))
        assert stock is not None
        if calls == 1:
            async with committed_db.session() as other:  # commits a conflicting change
                await other.execute(update(Product).values(stock=Product.stock - 1))
        await s.execute(update(Product).where(Product.id == product_id).values(stock=stock - 1))
        return stock

    assert await traced.db.transaction(take_one, isolation="REPEATABLE READ") == 9
    [span] = traced.named("asyncdal.transaction")
    attrs = dict(span.attributes or {})
    assert attrs["asyncdal.transaction.attempts"] == 2
    assert attrs["asyncdal.transaction.isolation"] == "REPEATABLE READ"
    assert "asyncdal.transaction.max_retries" not in attrs  # bounded by time, not a count
    [retry] = span.events
    assert retry.name == "retry"
    assert dict(retry.attributes or {})["db.response.status_code"] == "40001"
    assert dict(retry.attributes or {})["asyncdal.transaction.attempt"] == 1
    assert span.status.status_code is StatusCode.UNSET
    assert traced.value("asyncdal.transaction.retries") == 1
    assert traced.value("asyncdal.transaction.calls") == 1


async def test_a_failed_transaction_says_the_error_class_not_its_message(
    traced: Traced, committed_db: Database
) -> None:
    email = f"{SECRET_VALUE}@example.org"
    async with committed_db.session() as s:
        await UserRepository(s).create(username="first", email=email)

    with pytest.raises(DuplicateError) as info:
        await traced.db.transaction(
            lambda s: UserRepository(s).create(username="second", email=email)
        )
    assert SECRET_VALUE not in str(info.value)  # the message names the constraint only
    assert SECRET_VALUE in (info.value.detail or "")  # the DETAIL stays on the exception
    [span] = traced.named("asyncdal.transaction")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "DuplicateError"
    assert traced.value("asyncdal.errors", **{"error.type": "DuplicateError"}) == 1
    # The failed INSERT's own span: the layer's class and the SQLSTATE, not the adapter's
    # UniqueViolationError.
    [insert] = [s for s in traced.finished() if s.name.startswith("INSERT")]
    assert insert.status.status_code is StatusCode.ERROR
    assert dict(insert.attributes or {})["error.type"] == "DuplicateError"
    assert dict(insert.attributes or {})["db.response.status_code"] == "23505"
    _assert_nothing_leaks(traced.finished())


async def test_a_statement_error_quoting_a_value_does_not_reach_the_span(traced: Traced) -> None:
    with pytest.raises(InvalidQueryError) as info:  # asyncpg's DataError, mapped
        async with traced.db.session() as s:
            await s.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET_VALUE})
    assert SECRET_VALUE not in str(info.value)  # the driver quotes the value: kept apart
    assert SECRET_VALUE in (info.value.server_message or "")
    failed = [s for s in traced.finished() if s.status.status_code is StatusCode.ERROR]
    assert failed, "the statement span should be marked failed"
    _assert_nothing_leaks(traced.finished())


async def test_pool_metrics_move_when_20_sessions_are_held(traced: Traced) -> None:
    async with AsyncExitStack() as stack:
        for _ in range(20):
            session = await stack.enter_async_context(traced.db.session())
            await session.connection()
        assert traced.value("db.client.connection.count", "main", **USED) == 20
        assert traced.value("db.client.connection.count", "main", **IDLE) == 0
        assert traced.value("asyncdal.pool.overflow", "main") == 10
        assert traced.value("db.client.connection.max", "main") == 20
        assert traced.value("db.client.connection.count", "read", **USED) == 0

        async def one_more() -> None:
            async with traced.db.session() as s:
                await s.connection()

        waiter = asyncio.create_task(one_more())
        for _ in range(2000):
            if traced.db.stats().waiting:
                break
            await asyncio.sleep(0.005)
        assert traced.value("db.client.connection.pending_requests") == 1
    await waiter
    assert traced.value("db.client.connection.pending_requests") == 0
    assert traced.value("db.client.connection.count", "main", **USED) == 0
    assert traced.value("db.client.connection.count", "main", **IDLE) == 10
    assert traced.value("asyncdal.pool.checkouts") == 21
    assert traced.value("asyncdal.pool.wait_time") > 0


async def test_every_documented_metric_is_exported(traced: Traced) -> None:
    await traced.db.gather(lambda s: s.scalar(select(1)))
    with pytest.raises(DuplicateError):
        raise DuplicateError("x")  # not through the layer: not counted
    data = traced.metrics.get_metrics_data()
    assert data is not None
    names = {
        m.name
        for r in data.resource_metrics
        for scope in r.scope_metrics
        if scope.scope.name == "asyncdal"
        for m in scope.metrics
    }
    assert names == set(Instrumentation.METRICS) - {"asyncdal.errors"}  # no error yet: no point
    assert traced.value("asyncdal.gather.reads") == 1
    assert traced.value("asyncdal.gather.reads.queued") == 0


async def test_uninstrument_stops_spans_and_metrics(traced: Traced) -> None:
    traced.instrumentation.uninstrument()
    traced.instrumentation.uninstrument()  # twice is harmless
    await traced.db.gather(lambda s: s.scalar(select(func.now())))
    async with traced.db.session() as s:
        await s.execute(select(1))
    assert traced.finished() == []
    assert traced.points("asyncdal.gather.calls") == []
    engine = traced.db.engine.sync_engine
    assert not engine.dispatch.before_cursor_execute
    # And it can be instrumented again.
    again = instrument(traced.db, tracer_provider=TracerProvider())
    again.uninstrument()


async def test_instrumenting_twice_is_refused(traced: Traced) -> None:
    with pytest.raises(RuntimeError, match="already instrumented"):
        instrument(traced.db)


async def test_statement_spans_cover_every_engine_and_go_away(migrated_url: str) -> None:
    db = Database.from_url(migrated_url, replicas=[migrated_url])
    try:
        instrumentation = instrument(db, tracer_provider=TracerProvider())
        for engine in db.engines():
            assert engine.sync_engine.dispatch.before_cursor_execute
        instrumentation.uninstrument()
        for engine in db.engines():
            assert not engine.sync_engine.dispatch.before_cursor_execute
    finally:
        await db.dispose()
