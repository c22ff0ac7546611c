"""The life of one session block: open, hand out, then close cleanly whatever happened.

:func:`session_scope` is what ``db.session()``, ``db.transaction()`` and every read use: the
close waits (bounded) for another task still inside a call, runs shielded from cancellation
when it has something to wait for, and a close that fails discards the connection instead of
raising over the block's outcome. :func:`check_not_aborted` keeps a swallowed error from
turning into a silent rollback at COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncdal._session import DALSession

__all__ = ["check_not_aborted", "session_scope"]

logger = logging.getLogger("asyncdal.session")


def check_not_aborted(session: DALSession) -> None:
    """Before the layer commits: raise the error of a failed statement the caller swallowed.

    PostgreSQL answers COMMIT of a failed transaction with a silent ROLLBACK, so a unit of
    work whose caller caught (say) a DuplicateError and carried on would report success with
    nothing written. A failure inside a savepoint that was rolled back since is fine.
    """
    aborted = session._dal_aborted
    if aborted is None:
        return
    error, savepoint = aborted
    if savepoint is None or savepoint.is_active:
        raise error


@contextlib.asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[DALSession],
    *,
    busy_wait: float,
    managed: bool = False,
    quiet: bool = False,
) -> AsyncIterator[DALSession]:
    """A new session for one block; closed at the end whatever happens, and not usable after.

    Leaving the block first waits (at most ``busy_wait`` seconds) for another task still inside
    a call of this session, so the close never collides with it. A close that fails (the
    connection died after the work was done) discards the connection instead of raising over
    the block's outcome: what was committed stays committed, what was not was rolled back by
    the server when the connection ended. ``managed``: ``db.transaction`` owns commit/rollback.

    The close runs in a task of its own, shielded from cancellation, unless it cannot wait on
    anything: the block ended normally, no other task is inside a call, and there is no
    transaction to roll back (the block committed, or ``quiet``: an autocommit session). Code
    that never suspends cannot be interrupted, and the task costs a loop iteration per session.
    """
    session = sessionmaker()
    session._dal_managed = managed
    try:
        yield session
    except BaseException:
        await _run_to_completion(_finish(session, busy_wait))
        raise
    if session._dal_owner is None and (quiet or not session.in_transaction()):
        await _finish(session, busy_wait)
    else:
        await _run_to_completion(_finish(session, busy_wait))


async def _finish(session: DALSession, busy_wait: float) -> None:
    if not await session.wait_idle(busy_wait):
        owner = session._dal_owner
        if owner is not None:
            # The other task overstayed even its command timeout: cancel it, bounded.
            owner.cancel()
            with contextlib.suppress(TimeoutError):
                await session.wait_idle(1.0)
    session._dal_managed = False
    session._dal_closed = True
    try:
        await AsyncSession.close(session)
    except Exception as exc:
        logger.info("closing a session failed (%s); its connection is discarded", type(exc))
        with contextlib.suppress(Exception):
            await session.invalidate()


async def _run_to_completion(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to its end even if the caller is cancelled meanwhile; then re-raise that."""
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as err:
            if task.done():
                raise
            cancelled = err
        else:
            break
    if cancelled is not None:
        raise cancelled
