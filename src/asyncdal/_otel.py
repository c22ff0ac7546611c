"""The implementation of :mod:`asyncdal.otel` (the only module that imports OpenTelemetry)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("asyncdal.otel needs OpenTelemetry: pip install 'asyncdal[otel]'") from exc

from asyncdal._cursor_events import cursor_listener
from asyncdal._database import Database
from asyncdal._error_mapping import sqlstate_of, translate_error
from asyncdal._observe import GatherTrace, TransactionTrace
from asyncdal._otel_metrics import METRICS, register_metrics

__all__ = ["Instrumentation", "instrument"]

_SCOPE = "asyncdal"
_VERSION = "0.1.0"

# The layer's own span attributes, by span (Instrumentation.ATTRIBUTES).
_ATTRIBUTES: dict[str, dict[str, str]] = {
    "asyncdal.gather": {
        "asyncdal.gather.reads": "how many reads the call ran",
        "asyncdal.gather.consistent": "whether the reads shared one snapshot",
    },
    "asyncdal.gather.read": {
        "asyncdal.read.index": "the read's position in the call (0-based)",
        "asyncdal.read.queue_wait_s": "seconds from the call until the read's session was "
        "ready (its turn under the limit, a connection, BEGIN)",
        "asyncdal.read.run_s": "seconds the read itself ran",
    },
    "asyncdal.transaction": {
        "asyncdal.transaction.isolation": "the isolation level asked for, or 'default'",
        "asyncdal.transaction.max_retries": "the retries allowed, when capped by a count",
        "asyncdal.transaction.attempts": "how many times the unit of work ran",
    },
}


class Instrumentation:
    """What :func:`instrument` installed on one database; :meth:`uninstrument` removes it."""

    #: The layer's own span attributes, by span name, with their meaning.
    ATTRIBUTES = _ATTRIBUTES
    #: The metric instruments by name: (unit, meaning). All are read from ``db.stats()``.
    METRICS = METRICS

    def __init__(self, db: Database, statement_listeners: list[tuple[str, Any]]) -> None:
        self.db = db
        self.active = True
        self._statement_listeners = statement_listeners

    def uninstrument(self) -> None:
        """Stop tracing this database; its metrics report nothing from now on."""
        if not self.active:
            return
        self.active = False
        self.db.observer.telemetry = None
        for engine in _engines(self.db):
            for identifier, listener in self._statement_listeners:
                if event.contains(engine, identifier, listener):
                    event.remove(engine, identifier, listener)


def instrument(
    db: Database,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    statements: bool = True,
) -> Instrumentation:
    """Trace and measure ``db`` with OpenTelemetry.

    Explicit, per database, and undoable: nothing is patched globally (unlike the
    instrumentation's own ``SQLAlchemyInstrumentor().instrument()``, which also wraps every
    ``create_engine`` of the process).

    Args:
        db: the database to instrument.
        tracer_provider: where spans go; default: the global provider.
        meter_provider: where metrics go; default: the global provider.
        statements: also one span per statement (a ``CLIENT`` span named after the
            statement's first keyword and the database, e.g. ``SELECT app``). Off: only the
            layer's spans.
    """
    if db.observer.telemetry is not None:
        raise RuntimeError("this Database is already instrumented")
    tracer = trace.get_tracer(_SCOPE, _VERSION, tracer_provider)
    meter = metrics.get_meter(_SCOPE, _VERSION, meter_provider)
    db.observer.telemetry = _Telemetry(tracer, _server_attributes(db))
    listeners = _StatementTracer(tracer, db).install() if statements else []
    instrumentation = Instrumentation(db, listeners)
    register_metrics(meter, instrumentation.db, lambda: instrumentation.active)
    return instrumentation


def _server_attributes(db: Database) -> dict[str, Any]:
    """The database conventions' connection attributes: never the user or password."""
    url = db.url
    attributes: dict[str, Any] = {"db.system": "postgresql", "db.system.name": "postgresql"}
    if url.database:
        attributes["db.namespace"] = url.database
    if url.host:
        attributes["server.address"] = url.host
        attributes["server.port"] = url.port or 5432
    return attributes


def _failed(span: Span, exc: BaseException) -> None:
    # The class only: an exception's message may quote a value (a duplicate key's detail).
    # A driver error is named by the layer's class it maps to (DuplicateError, not the
    # adapter's UniqueViolationError), and its SQLSTATE goes beside it.
    span.set_status(Status(StatusCode.ERROR))
    mapped = translate_error(exc)
    span.set_attribute("error.type", type(mapped if mapped is not None else exc).__qualname__)
    sqlstate = sqlstate_of(exc)
    if sqlstate is not None:
        span.set_attribute("db.response.status_code", sqlstate)


class _Telemetry:
    """The :class:`asyncdal._observe.Telemetry` the layer calls, as OpenTelemetry spans."""

    def __init__(self, tracer: trace.Tracer, attributes: dict[str, Any]) -> None:
        self._tracer = tracer
        self._attributes = attributes

    @contextmanager
    def _span(self, name: str, attributes: dict[str, Any]) -> Iterator[Span]:
        with self._tracer.start_as_current_span(
            name,
            kind=SpanKind.INTERNAL,
            attributes={**self._attributes, **attributes},
            record_exception=False,  # the event would carry the message
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                _failed(span, exc)
                raise

    @contextmanager
    def gather(self, reads: int, consistent: bool) -> Iterator[GatherTrace]:
        attributes = {"asyncdal.gather.reads": reads, "asyncdal.gather.consistent": consistent}
        with self._span("asyncdal.gather", attributes):
            yield _GatherTrace(self)

    @contextmanager
    def transaction(self, isolation: str | None, retries: int | None) -> Iterator[TransactionTrace]:
        attributes: dict[str, str | int] = {
            "asyncdal.transaction.isolation": isolation or "default"
        }
        if retries is not None:  # None: bounded by the time budget only
            attributes["asyncdal.transaction.max_retries"] = retries
        with self._span("asyncdal.transaction", attributes) as span:
            attempts = _TransactionTrace(span)
            try:
                yield attempts
            finally:
                span.set_attribute("asyncdal.transaction.attempts", attempts.attempts)


class _GatherTrace:
    def __init__(self, telemetry: _Telemetry) -> None:
        self._telemetry = telemetry

    @contextmanager
    def read(self, index: int, queued: float) -> Iterator[None]:
        attributes = {"asyncdal.read.index": index, "asyncdal.read.queue_wait_s": queued}
        with self._telemetry._span("asyncdal.gather.read", attributes) as span:
            started = time.perf_counter()
            try:
                yield
            finally:
                span.set_attribute("asyncdal.read.run_s", time.perf_counter() - started)


class _TransactionTrace:
    def __init__(self, span: Span) -> None:
        self._span = span
        self.attempts = 1

    def retry(self, attempt: int, sqlstate: str, delay: float) -> None:
        self.attempts = attempt + 1
        self._span.add_event(
            "retry",
            {
                "asyncdal.transaction.attempt": attempt,
                "db.response.status_code": sqlstate,
                "asyncdal.transaction.backoff_s": delay,
            },
        )


class _StatementTracer:
    """One ``CLIENT`` span per statement, from the engines' public cursor-execute events.

    The span of a statement in flight is kept in its connection's ``info`` (a connection runs
    one statement at a time). Its attributes: the server's (see :func:`_server_attributes`),
    ``db.operation.name`` and ``db.query.text``: the SQL as sent, with ``$n`` placeholders, never
    the bound values.
    """

    _KEY = "asyncdal.otel.statement_span"

    def __init__(self, tracer: trace.Tracer, db: Database) -> None:
        self._tracer = tracer
        self._db = db
        self._attributes = _server_attributes(db)
        self._name_suffix = f" {db.url.database}" if db.url.database else ""

    def install(self) -> list[tuple[str, Any]]:
        """Listen on every engine of the database; the listeners, for :meth:`uninstrument`."""
        listeners: list[tuple[str, Any]] = [
            ("before_cursor_execute", cursor_listener(self._started)),
            ("after_cursor_execute", cursor_listener(self._finished)),
            ("handle_error", self._failed),
        ]
        for engine in _engines(self._db):
            for identifier, listener in listeners:
                event.listen(engine, identifier, listener)
        return listeners

    def _started(self, conn: Connection, statement: str, context: Any) -> None:
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        attributes = {
            **self._attributes,
            "db.operation.name": operation,
            "db.query.text": statement,
        }
        interrupted: Span | None = conn.info.pop(self._KEY, None)
        if interrupted is not None:
            # The previous statement never reported back (cancelled mid-flight): close it.
            interrupted.set_status(Status(StatusCode.ERROR))
            interrupted.set_attribute("error.type", "CancelledError")
            interrupted.end()
        conn.info[self._KEY] = self._tracer.start_span(
            operation + self._name_suffix, kind=SpanKind.CLIENT, attributes=attributes
        )

    def _finished(self, conn: Connection, statement: str, context: Any) -> None:
        span: Span | None = conn.info.pop(self._KEY, None)
        if span is not None:
            span.end()

    def _failed(self, context: ExceptionContext) -> None:
        conn = context.connection
        span: Span | None = conn.info.pop(self._KEY, None) if conn is not None else None
        if span is None:
            return
        if span.is_recording():
            _failed(span, context.original_exception)
        span.end()


def _engines(db: Database) -> list[Engine]:
    """The database's sync engines: main pool, read pool, replicas."""
    return [engine.sync_engine for engine in db.engines()]
