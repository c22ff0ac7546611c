"""Run a unit of work, again, when PostgreSQL says it may succeed if retried.

Serialization failures (SQLSTATE 40001) and deadlocks (40P01) are the database telling one of
two conflicting transactions to start over. :func:`run_transaction` does that with a fresh
session each time and a jittered exponential backoff, so the losers of a conflict do not collide
again in lockstep, for as long as its time budget (``retry_for``) allows: under contention from
several processes a count runs out long before the contended row reaches its final state (the
stock is gone), while a budget in time lets the retries find the domain's answer. A connection
lost before COMMIT was sent is retried too (nothing was committed; a failover or a killed
backend). A connection lost during COMMIT is retried only when the database may fail over and
a new connection proves the transaction did not commit (:mod:`asyncdal._commit_outcome`); one
that did commit returns its result. Otherwise the outcome is unknown, and the error says so.
Nothing else is retried: a duplicate key stays a duplicate key.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker

from asyncdal._commit_outcome import CommitMarker, Outcome, mark_commit, outcome_of
from asyncdal._error_mapping import (
    RETRYABLE_SQLSTATES,
    is_driver_error,
    is_stale_statement,
    sqlstate_of,
    translate_error,
)
from asyncdal._errors import (
    AuthenticationError,
    ConcurrencyError,
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidTypeError,
    StaleStatementError,
    TransactionUsageError,
)
from asyncdal._session import DALSession, SessionScope
from asyncdal._writes import connected, watch_writes, wrote

__all__ = ["DEFAULT_RETRY_FOR", "ISOLATION_LEVELS", "run_transaction"]

T = TypeVar("T")

logger = logging.getLogger("asyncdal.transaction")

#: The isolation levels ``transaction(isolation=...)`` accepts.
ISOLATION_LEVELS = frozenset({"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})
#: First backoff and its ceiling, in seconds; attempt n waits about BASE * 2**(n-1).
BACKOFF_BASE = 0.005
BACKOFF_MAX = 0.5
#: The default time budget for retries, in seconds (from the first attempt's start).
DEFAULT_RETRY_FOR = 10.0

# Set while fn runs: db.transaction inside fn (or a task it starts) is refused.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "asyncdal_transaction", default=False
)


def backoff_delay(attempt: int) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential, with equal jitter."""
    ceiling: float = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def run_transaction(
    sessionmaker: async_sessionmaker[DALSession],
    fn: Callable[[DALSession], Awaitable[T]],
    *,
    retries: int | None = None,
    retry_for: float = DEFAULT_RETRY_FOR,
    isolation: str | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    on_attempt: Callable[[DALSession], None] | None = None,
    busy_wait: float = 60.0,
    failover: float = 0.0,
) -> T:
    """Run ``fn(session)`` in a new session and transaction and commit; retry on conflict.

    A serialization failure, a deadlock or a stale cached statement reported by the database
    on an attempt, or the connection lost before COMMIT was sent, runs ``fn`` again in a new
    session after a jittered exponential backoff, as long as the next attempt would start
    within ``retry_for`` seconds of the first run of ``fn`` and (when ``retries`` is given) at most
    ``retries`` more times. Exhausted: :class:`ConcurrencyError` (``attempts`` says how many
    runs) chained to the last conflict, or the last connection error. A connection lost during
    COMMIT is a :class:`DatabaseUnavailableError` saying the outcome is unknown.

    ``failover``: seconds the database may take to fail over (``Settings.failover_timeout``).
    When > 0, a lost connection is retried for that much longer than ``retry_for`` (a failover
    outlasts a conflict budget), and a unit of work that wrote takes a marker before COMMIT
    (one round trip): after a lost COMMIT, a new connection tells whether it committed (its
    result is returned), did not (``fn`` runs again) or cannot say (the error). Any other
    error is raised at once, mapped to the layer's exceptions; the caller's own exceptions pass
    through. ``fn`` must not commit, roll back or close the session, nor call
    ``db.transaction`` itself (:class:`TransactionUsageError`). ``on_retry(attempt, reason,
    delay)``, if given, hears of each retry before its backoff (counters and telemetry);
    ``on_attempt(session)`` gets each attempt's session before ``fn`` does.
    """
    if not callable(fn):
        raise InvalidTypeError(
            f"db.transaction() takes a callable that receives a session, e.g. "
            f"`lambda s: OrderRepository(s).place(...)`, got {type(fn).__name__}"
        )
    _check_budget(retries, retry_for)
    if isolation is not None and not isinstance(isolation, str):
        raise ConfigurationError(f"isolation must be a string or None, got {isolation!r}")
    level = None if isolation is None else isolation.strip().upper()
    if level is not None and level not in ISOLATION_LEVELS:
        raise ConfigurationError(
            f"unknown isolation level {isolation!r}; allowed: {sorted(ISOLATION_LEVELS)}"
        )
    if _inside.get():
        raise TransactionUsageError(
            "db.transaction() was called inside another db.transaction()'s fn: nested "
            "transactions are refused, because the inner one would commit on its own and both "
            "would retry (the retries multiply). Call the inner function with the outer "
            "session instead: `await inner(session)`."
        )
    # Set when fn first runs: the wait for the first connection is the pool's (pool_timeout).
    deadline: float | None = None
    attempt = 0
    while True:
        attempt += 1
        session: DALSession | None = None
        committing = False
        marker: CommitMarker | None = None
        try:
            async with SessionScope(sessionmaker, busy_wait=busy_wait, managed=True) as session:
                if failover > 0:
                    watch_writes(session)
                if on_attempt is not None:
                    on_attempt(session)
                if level is not None:
                    # Must be the transaction's first statement: it fixes the connection's level.
                    await session.connection(execution_options={"isolation_level": level})
                if deadline is None:
                    deadline = time.monotonic() + retry_for
                token = _inside.set(True)
                try:
                    result = await fn(session)
                finally:
                    _inside.reset(token)
                session._dal_managed = False
                if session._dal_misuse is not None:
                    raise session._dal_misuse
                session._dal_check_not_aborted()
                if failover > 0:
                    await session.flush()  # COMMIT's own flush, early: it may write
                    if wrote(session):
                        marker = await mark_commit(session)
                committing = True
                await session.commit()
                return result
        except Exception as exc:
            code = _retryable(exc, session)
            if code is None and _connection_lost(exc, session):
                if committing:
                    outcome = Outcome.UNKNOWN
                    if marker is not None:
                        assert deadline is not None
                        # As for a lost connection, a failover may outlast retry_for.
                        outcome = await outcome_of(sessionmaker, marker, until=deadline + failover)
                    if outcome is Outcome.COMMITTED:
                        logger.debug("COMMIT's answer was lost; the transaction committed")
                        return result
                    if outcome is Outcome.UNKNOWN:
                        raise DatabaseUnavailableError(
                            "the connection was lost during COMMIT: the outcome is unknown (the "
                            "transaction may or may not have committed); check before running "
                            "it again"
                        ) from exc
                code = _LOST
            if code is None:
                mapped = translate_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            delay = backoff_delay(attempt)
            out_of_count = retries is not None and attempt > retries
            # A failover may outlast the conflicts' budget: the next connect waits for it.
            budget_end = None if deadline is None else deadline + (failover if code == _LOST else 0)
            if out_of_count or budget_end is None or time.monotonic() + delay > budget_end:
                if code == _LOST:
                    mapped = translate_error(exc)
                    raise (mapped if mapped is not None else exc) from exc
                raise ConcurrencyError(
                    f"transaction failed {attempt} time(s) in {retry_for:g}s, the last with "
                    f"{_STALE if code == _STALE else 'SQLSTATE ' + code}; giving up",
                    attempts=attempt,
                    sqlstate=code if code in RETRYABLE_SQLSTATES else None,
                ) from exc
            logger.debug("retrying after %s (attempt %d), in %.3fs", code, attempt, delay)
            if on_retry is not None:
                on_retry(attempt, str(code), delay)
            await asyncio.sleep(delay)


def _check_budget(retries: int | None, retry_for: float) -> None:
    if retries is not None and (
        not isinstance(retries, int) or isinstance(retries, bool) or retries < 0
    ):
        raise ConfigurationError(f"retries must be a non-negative integer or None, got {retries!r}")
    if (
        not isinstance(retry_for, int | float)
        or isinstance(retry_for, bool)
        or not 0 <= retry_for < float("inf")
    ):
        raise ConfigurationError(
            f"retry_for must be a finite number of seconds >= 0, got {retry_for!r}"
        )


_STALE = "a stale cached statement"
#: The reason reported to on_retry for a connection lost before COMMIT (08006: connection failure).
_LOST = "08006"


def _connection_lost(exc: Exception, session: DALSession | None) -> bool:
    """Whether this attempt's established connection was lost (not a failure to connect).

    Only the layer's own mapping of a call of this attempt's session (or a raw driver error),
    never an application exception raised from one: the caller decided. A session that never
    had a connection failed to connect (server down, no primary): that is not retried here,
    so a stopped server still fails fast.
    """
    if session is None or not (is_driver_error(exc) or _from_the_session(exc)):
        return False
    mapped = exc if isinstance(exc, DatabaseUnavailableError) else translate_error(exc)
    if not isinstance(mapped, DatabaseUnavailableError) or isinstance(mapped, AuthenticationError):
        return False
    return connected(session)


def _from_the_session(exc: Exception) -> bool:
    # The layer's mapped error, raised from the driver's: a guarded call of the session.
    return isinstance(exc, DatabaseUnavailableError) and is_driver_error(exc.__cause__ or exc)


def _retryable(exc: Exception, session: DALSession | None) -> str | None:
    """Why this attempt may be run again, if the database itself said so on this attempt.

    Either the layer's own mapped error from a call of this attempt's session (not an
    application exception raised ``from`` one), or a raw driver error (the COMMIT, a stream).
    """
    if session is not None and exc is session._dal_retryable:
        if isinstance(exc, StaleStatementError):
            return _STALE
        return exc.sqlstate or "40001"
    if is_driver_error(exc):
        if is_stale_statement(exc):
            return _STALE
        code = sqlstate_of(exc)
        if code in RETRYABLE_SQLSTATES:
            return code
    return None
