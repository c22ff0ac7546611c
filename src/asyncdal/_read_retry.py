"""Reads that outlive their server: a read whose connection died mid-read runs again.

A read outside a unit of work (``db.gather`` without ``consistent``, ``db.get``,
``db.get_many``) writes nothing and commits nothing, so running it again is safe. When its
connection is lost while it runs (the server stopped, was killed, or is being switched over by
an HA manager), it runs again in a new session after a short backoff: the read path then picks
a server again (another replica, or the primary the URL's host list leads to once the failover
is done; the connect waits for one up to ``Settings.failover_timeout``). A failure to connect
at all, an exhausted pool, authentication and the caller's own exceptions are not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from asyncdal._error_mapping import sqlstate_of
from asyncdal._errors import AuthenticationError, DatabaseUnavailableError

__all__ = ["READ_RETRIES", "connection_lost_mid_read", "lost_read_backoff", "retry_lost_reads"]

T = TypeVar("T")

#: Runs of a read after the first one when its connection dies. A switchover ends every pooled
#: connection to the old primary, and the client notices each only when the loop reads its
#: socket: a loaded process may hand a read a few dead ones in a row before that.
READ_RETRIES = 5
#: The first backoff between runs, doubled each time (10, 20, 40, 80, 160 ms: 0.3 s in all).
_FIRST_BACKOFF = 0.01

# Connect-time refusals that a new connection would meet again at once.
_NOT_A_LOSS = frozenset({"3D000", "53300"})


def connection_lost_mid_read(exc: BaseException) -> bool:
    """Whether ``exc`` is the layer's error for a connection lost while a statement ran.

    The layer's mapping of a driver error (never an application exception, which passes
    through as it is), not a connect failure (those are raised by the connect itself, after
    ``failover_timeout``), nor a missing database, too many connections or authentication.
    """
    if not isinstance(exc, DatabaseUnavailableError) or isinstance(exc, AuthenticationError):
        return False
    cause = exc.__cause__
    return isinstance(cause, DBAPIError) and sqlstate_of(cause) not in _NOT_A_LOSS


def lost_read_backoff(exc: DatabaseUnavailableError, attempt: int) -> float | None:
    """Seconds to wait before running a read again after ``exc``; ``None``: raise ``exc``.

    ``attempt``: how many times the read already ran again (0 after its first run).
    """
    if attempt >= READ_RETRIES or not connection_lost_mid_read(exc):
        return None
    # Time for the loop to see the other dead connections closed (checkout drops them).
    return float(_FIRST_BACKOFF * 2**attempt)


async def retry_lost_reads(run: Callable[[], Awaitable[T]]) -> T:
    """``await run()``, again (up to :data:`READ_RETRIES` times) if its connection died."""
    attempt = 0
    while True:
        try:
            return await run()
        except DatabaseUnavailableError as exc:
            delay = lost_read_backoff(exc, attempt)
            if delay is None:
                raise
            await asyncio.sleep(delay)
            attempt += 1
