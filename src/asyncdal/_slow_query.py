"""The slow-query log: statements that ran longer than ``slow_query_threshold``.

Two engine events time each statement on the client (``before_cursor_execute`` and
``after_cursor_execute``, or ``handle_error`` when it failed, e.g. cancelled by
``statement_timeout``), so the duration includes the round trip. The record carries the
statement text with its placeholders (``$1``...), never the bound parameters, which may be
personal data. With no threshold nothing is registered, so the setting costs nothing when off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

from asyncdal._cursor_events import cursor_listener

__all__ = ["SLOW_QUERY_LOGGER", "log_slow_queries"]

#: The logger slow statements are written to, at WARNING.
SLOW_QUERY_LOGGER = "asyncdal.slow_query"

logger = logging.getLogger(SLOW_QUERY_LOGGER)
# The execution context carries the start time from one event to the next.
_STARTED = "_asyncdal_started"


def log_slow_queries(engine: Engine, threshold: float) -> None:
    """Log every statement run on ``engine`` that takes longer than ``threshold`` seconds.

    Each record has the duration and the statement in its message, and as ``extra`` fields
    (``duration``, ``statement``) for structured handlers; ``failed`` names the error class
    when the slow statement failed.
    """

    def started(conn: Connection, statement: str, context: Any) -> None:
        if context is not None:
            setattr(context, _STARTED, time.perf_counter())

    def finished(conn: Connection, statement: str, context: Any) -> None:
        _report(context, statement, threshold, failed=None)

    event.listen(engine, "before_cursor_execute", cursor_listener(started))
    event.listen(engine, "after_cursor_execute", cursor_listener(finished))

    @event.listens_for(engine, "handle_error")
    def failed(exception_context: ExceptionContext) -> None:
        statement = exception_context.statement
        if statement is not None:
            error = type(exception_context.original_exception).__name__
            _report(exception_context.execution_context, statement, threshold, failed=error)


def _report(context: Any, statement: str, threshold: float, *, failed: str | None) -> None:
    started: float | None = getattr(context, _STARTED, None)
    if started is None:
        return
    setattr(context, _STARTED, None)  # one record per statement, even if both events fire
    duration = time.perf_counter() - started
    if duration <= threshold:
        return
    outcome = "" if failed is None else f" (failed: {failed})"
    logger.warning(
        "slow query: %.3f s%s: %s",
        duration,
        outcome,
        statement,
        extra={"duration": duration, "statement": statement, "failed": failed},
    )
