"""The implementation of :mod:`asyncdal.otel` (the only module that imports OpenTelemetry)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

try:
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.sqlalchemy import engine as sqla_otel
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqla_otel_version
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("asyncdal.otel needs OpenTelemetry: pip install 'asyncdal[otel]'") from exc

from asyncdal._database import Database
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
        "asyncdal.transaction.max_retries": "the retries allowed",
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
            _forget_listeners(engine)


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
        statements: also one span per statement (the official SQLAlchemy instrumentation).
            Off: only the layer's spans.
    """
    if db.observer.telemetry is not None:
        raise RuntimeError("this Database is already instrumented")
    tracer = trace.get_tracer(_SCOPE, _VERSION, tracer_provider)
    meter = metrics.get_meter(_SCOPE, _VERSION, meter_provider)
    db.observer.telemetry = _Telemetry(tracer, _server_attributes(db))
    listeners = _trace_statements(db, tracer_provider, meter_provider) if statements else []
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
    span.set_status(Status(StatusCode.ERROR))
    span.set_attribute("error.type", type(exc).__qualname__)


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
    def transaction(self, isolation: str | None, retries: int) -> Iterator[TransactionTrace]:
        attributes = {
            "asyncdal.transaction.isolation": isolation or "default",
            "asyncdal.transaction.max_retries": retries,
        }
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


def _trace_statements(
    db: Database,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
) -> list[tuple[str, Any]]:
    """Install the official SQLAlchemy instrumentation's listeners on this database's engines
    only (the main pool's and the read pool's)."""
    scope = "opentelemetry.instrumentation.sqlalchemy"
    tracer = trace.get_tracer(scope, sqla_otel_version, tracer_provider)
    meter = metrics.get_meter(scope, sqla_otel_version, meter_provider)
    usage = meter.create_up_down_counter(
        "db.client.connections.usage", unit="connections", description="connections by state"
    )
    for engine in _engines(db):
        sqla_otel.EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]  # untyped package
        # Its error listener puts str(exception) in the span status, and PostgreSQL's messages
        # can quote a bound value ('invalid input syntax for type integer: "..."'): use ours.
        original = getattr(sqla_otel, "_handle_error", None)
        if original is not None and event.contains(engine, "handle_error", original):
            event.remove(engine, "handle_error", original)
            _forget_listeners(engine, only=original)
        event.listen(engine, "handle_error", _statement_failed)
    return [("handle_error", _statement_failed)]


def _engines(db: Database) -> list[Engine]:
    """The database's sync engines: main pool, read pool, replicas."""
    return [engine.sync_engine for engine in db.engines()]


def _forget_listeners(engine: Engine, only: Callable[..., Any] | None = None) -> None:
    """Remove the instrumentation's listeners on ``engine`` (all, or ``only``) and its record."""
    registry: list[tuple[Any, str, Any]] = sqla_otel.EngineTracer._remove_event_listener_params
    for entry in list(registry):
        target, identifier, listener = entry
        if target() is not engine or (only is not None and listener is not only):
            continue
        if only is None and event.contains(engine, identifier, listener):
            event.remove(engine, identifier, listener)
        registry.remove(entry)


def _statement_failed(context: ExceptionContext) -> None:
    span = getattr(context.execution_context, "_otel_span", None)
    if span is None:
        return
    if span.is_recording():
        _failed(span, context.original_exception)
    span.end()
