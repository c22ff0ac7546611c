"""Run a unit of work, again, when PostgreSQL says it may succeed if retried.

Serialization failures (SQLSTATE 40001) and deadlocks (40P01) are the database telling one of
two conflicting transactions to start over. :func:`run_transaction` does that with a fresh
session each time and a jittered exponential backoff, so the losers of a conflict do not collide
again in lockstep. Nothing else is retried: a duplicate key stays a duplicate key.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import async_sessionmaker

from asyncdal._error_mapping import RETRYABLE_SQLSTATES, sqlstate_of, translate_error
from asyncdal._errors import ConcurrencyError, ConfigurationError
from asyncdal._session import DALSession

__all__ = ["ISOLATION_LEVELS", "run_transaction"]

T = TypeVar("T")

logger = logging.getLogger("asyncdal.transaction")

#: The isolation levels ``transaction(isolation=...)`` accepts.
ISOLATION_LEVELS = frozenset({"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})
#: First backoff and its ceiling, in seconds; attempt n waits about BASE * 2**(n-1).
BACKOFF_BASE = 0.005
BACKOFF_MAX = 0.5


def backoff_delay(attempt: int) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential, with equal jitter."""
    ceiling: float = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def run_transaction(
    sessionmaker: async_sessionmaker[DALSession],
    fn: Callable[[DALSession], Awaitable[T]],
    *,
    retries: int = 3,
    isolation: str | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
) -> T:
    """Run ``fn(session)`` in a new session and transaction and commit; retry on conflict.

    Up to ``retries`` more attempts follow a serialization failure or deadlock, each in a new
    session after a rolled-back one. Exhausted: :class:`ConcurrencyError` (``attempts`` says
    how many runs), chained to the last failure. Any other error is raised at once, mapped
    to the layer's exceptions. ``on_retry(attempt, sqlstate, delay)``, if given, hears of each
    retry before its backoff (the database's counters and telemetry).
    """
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigurationError(f"retries must be a non-negative integer, got {retries!r}")
    if isolation is not None and not isinstance(isolation, str):
        raise ConfigurationError(f"isolation must be a string or None, got {isolation!r}")
    level = None if isolation is None else isolation.strip().upper()
    if level is not None and level not in ISOLATION_LEVELS:
        raise ConfigurationError(
            f"unknown isolation level {isolation!r}; allowed: {sorted(ISOLATION_LEVELS)}"
        )
    attempt = 0
    while True:
        attempt += 1
        try:
            async with sessionmaker() as session, session.begin():
                if level is not None:
                    # Must be the transaction's first statement: it fixes the connection's level.
                    await session.connection(execution_options={"isolation_level": level})
                return await fn(session)
        except Exception as exc:
            code = sqlstate_of(exc)
            if code not in RETRYABLE_SQLSTATES:
                mapped = translate_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            if attempt > retries:
                raise ConcurrencyError(
                    f"transaction failed {attempt} time(s) with SQLSTATE {code} "
                    "(serialization failure or deadlock); giving up",
                    attempts=attempt,
                ) from exc
            delay = backoff_delay(attempt)
            logger.debug("retrying after SQLSTATE %s (attempt %d), in %.3fs", code, attempt, delay)
            if on_retry is not None:
                on_retry(attempt, str(code), delay)
            await asyncio.sleep(delay)
