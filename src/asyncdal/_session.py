"""The session class the layer hands out, and its life: opened, handed out, closed cleanly.

:class:`DALSession` is an ``AsyncSession`` whose database calls go through a door (see
:mod:`asyncdal._guard`): one task at a time, driver errors mapped there, once.
:class:`SessionScope` is one session block, the only way the layer opens a session
(``db.read()``, ``db.session()``, ``db.transaction()``, every read of ``db.gather``): it
opens the session, hands it out and, whatever happened, closes it, also under cancellation,
and returns its connection to the pool only in a known state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio.result import AsyncCommon

from asyncdal._compat import SQLALCHEMY_2_1
from asyncdal._error_mapping import translate_error
from asyncdal._errors import (
    AsyncDALError,
    ConcurrencyError,
    ConcurrentSessionUseError,
    StaleStatementError,
    TransactionUsageError,
)
from asyncdal._guard import GuardedConnection, guard, guarded_call, managed_message
from asyncdal._versioning import VersionCheckingSession

__all__ = ["DALSession", "SessionScope"]

logger = logging.getLogger("asyncdal.session")


class DALSession(AsyncSession):
    """An ``AsyncSession`` as handed out by :class:`Database`, guarded against sharing.

    It behaves exactly like SQLAlchemy's ``AsyncSession``, except that it belongs to one task
    at a time: while one task is inside a database call (``execute``, ``get``, ``flush``,
    ``commit``...), iterates a result of ``stream()``, or uses the ``AsyncConnection`` from
    ``connection()``, a call from another task raises :class:`ConcurrentSessionUseError`
    instead of corrupting the session. Handing a session from task to task, one after the
    other, is allowed. For concurrent reads use ``await db.gather(...)``, which gives each
    read its own session. A session used after its ``db.session()`` block ended raises
    :class:`SessionClosedError`.

    Driver errors raised by these calls are mapped to the layer's exceptions right here.
    """

    # Class defaults, so every way of building a session (the sessionmaker, or
    # DALSession(bind=...) as the tests do) gets them.
    #: The task currently inside a guarded call.
    _dal_owner: asyncio.Task[Any] | None = None
    # Names the row when an optimistic-locking write loses (StaleWriteError).
    sync_session_class = VersionCheckingSession
    #: The task whose stream() result is still open.
    _dal_stream_owner: asyncio.Task[Any] | None = None
    #: Set by the session's scope when its block ends.
    _dal_closed: bool = False
    #: Inside db.transaction: commit/rollback/close belong to the layer.
    _dal_managed: bool = False
    #: The first ConcurrentSessionUseError raised for this session (re-raised at the end).
    _dal_misuse: ConcurrentSessionUseError | None = None
    #: A statement the server failed: its error, its transaction and the savepoint it was in.
    _dal_aborted: tuple[AsyncDALError, Any, Any] | None = None
    #: The last retryable error (conflict, stale statement) mapped by a call of this session.
    _dal_retryable: ConcurrencyError | StaleStatementError | None = None
    #: A call failed in the driver itself: the connection's state is unknown, so at the end
    #: of the block it is discarded instead of going back to the pool.
    _dal_discard: bool = False
    _dal_idle: asyncio.Event | None = None
    _dal_streams: list[Any] | None = None

    # Every coroutine method that talks to the database, guarded (see _guard.UNGUARDED for
    # the rest).
    commit = guard(AsyncSession.commit)
    delete = guard(AsyncSession.delete)
    execute = guard(AsyncSession.execute)
    flush = guard(AsyncSession.flush)
    get = guard(AsyncSession.get)
    get_one = guard(AsyncSession.get_one)
    merge = guard(AsyncSession.merge)
    refresh = guard(AsyncSession.refresh)
    rollback = guard(AsyncSession.rollback)
    run_sync = guard(AsyncSession.run_sync)
    scalar = guard(AsyncSession.scalar)  # type: ignore[assignment,arg-type]  # mypy: overloads
    scalars = guard(AsyncSession.scalars)
    stream = guard(AsyncSession.stream)
    stream_scalars = guard(AsyncSession.stream_scalars)
    if SQLALCHEMY_2_1:
        delete_all = guard(AsyncSession.delete_all)
        merge_all = guard(AsyncSession.merge_all)

    async def close(self) -> None:
        """Close the session (SQLAlchemy's ``close``); refused inside ``db.transaction``.

        The transaction is rolled back and the connection released; the session may be used
        again in the same block, on a new transaction that a failed statement of the old one
        no longer stops from committing. After a call that failed in the driver itself the
        connection is discarded, as at the end of the block.
        """
        if self._dal_managed:
            raise TransactionUsageError(managed_message("close"))
        await self._dal_end_transaction(super().close)

    async def reset(self) -> None:
        """Reset the session to its initial state (SQLAlchemy's ``reset``), like :meth:`close`."""
        if self._dal_managed:
            raise TransactionUsageError(managed_message("reset"))
        await self._dal_end_transaction(super().reset)

    async def _dal_end_transaction(self, end: Callable[[], Awaitable[None]]) -> None:
        if self._dal_discard:
            await self.invalidate()  # the connection's state is unknown: not back to the pool
            self._dal_discard = False
        await end()

    async def connection(self, *args: Any, **kwargs: Any) -> AsyncConnection:
        """The session's ``AsyncConnection``, guarded like the session itself."""
        conn = await guarded_call(self, "connection", AsyncSession.connection, args, kwargs)
        return GuardedConnection(self, conn)

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 (a bound, not a deadline)
        """Wait until no other task is inside a call of this session; False if it timed out."""
        while self._dal_owner is not None and self._dal_owner is not asyncio.current_task():
            if self._dal_owner.done():
                break
            if self._dal_idle is None:
                self._dal_idle = asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await self._dal_idle.wait()
            except TimeoutError:
                return False
        return True

    def _dal_add_stream(self, result: AsyncCommon[Any], task: asyncio.Task[Any] | None) -> None:
        """``task`` holds the session until ``result`` (a ``stream()``) is closed or exhausted."""
        if self._dal_streams is None:
            self._dal_streams = []
        self._dal_streams.append(result._real_result)
        self._dal_stream_owner = task

    def _dal_open_stream(self) -> bool:
        if not self._dal_streams:
            return False
        # The underlying results; an open one is a server-side cursor still in use. Private
        # reads, for a guard only (no public "exhausted" flag; checked on SQLAlchemy 2.0.54 and
        # 2.1.9): AsyncCommon._real_result here and Result._soft_closed below.
        self._dal_streams = [
            real
            for real in self._dal_streams
            if not (real.closed or getattr(real, "_soft_closed", False))
        ]
        return bool(self._dal_streams)

    def _dal_check_not_aborted(self) -> None:
        """Before the layer commits: raise the error of a failed statement the caller swallowed.

        PostgreSQL answers COMMIT of a failed transaction with a silent ROLLBACK, so a unit of
        work whose caller caught (say) a DuplicateError and carried on would report success
        with nothing written. A failure inside a savepoint that was rolled back since is fine.
        """
        aborted = self._dal_aborted
        if aborted is None:
            return
        error, transaction, savepoint = aborted
        if transaction is not self.sync_session.get_transaction():
            return  # that transaction is over (committed, rolled back, closed, reset)
        if savepoint is None or savepoint.is_active:
            raise error


class SessionScope:
    """One session block: a new session, handed out, and closed at the end whatever happens.

    Args:
        sessionmaker: makes the session.
        busy_wait: leaving the block first waits (at most this many seconds) for another task
            still inside a call of this session, so the close never collides with it.
        begin: execution options to begin the transaction with at the start (``BEGIN READ
            ONLY``...); ``None``: the session begins when it is first used.
        commit: a unit of work: commit when the block ends without an error (refused when
            another task was caught using the session, or a failed statement was swallowed).
        managed: ``db.transaction`` owns commit and rollback (refused to the caller).
        quiet: the session never has a transaction to roll back (autocommit, the read pool).
        on_error: told of each layer error that leaves the block (the stats counters).
        after_commit: awaited with the session after a committed block (read-your-writes
            bookkeeping).

    Driver errors that leave the block without passing the session's door (a result iterated
    after its call, a raw connection) are mapped here; the caller's own exceptions pass
    through unchanged. The connection goes back to the pool only in a known state: after a
    call that failed in the driver itself (a value the driver could not encode, a lost
    connection) it is discarded instead, also when the caller swallowed that error. A close
    that fails (the connection died after the work was done) discards the connection instead
    of raising over the block's outcome.

    The close runs in a task of its own, shielded from cancellation, unless it cannot wait on
    anything: the block ended normally, no other task is inside a call, and there is no
    transaction to roll back. Code that never suspends cannot be interrupted, and the task
    costs a loop iteration per session.
    """

    __slots__ = (
        "_after_commit",
        "_begin",
        "_busy_wait",
        "_commit",
        "_maker",
        "_managed",
        "_on_error",
        "_quiet",
        "session",
    )

    def __init__(
        self,
        sessionmaker: async_sessionmaker[DALSession],
        *,
        busy_wait: float,
        begin: dict[str, Any] | None = None,
        commit: bool = False,
        managed: bool = False,
        quiet: bool = False,
        on_error: Callable[[AsyncDALError], None] | None = None,
        after_commit: Callable[[DALSession], Awaitable[None]] | None = None,
    ) -> None:
        """A scope for one block; nothing happens until it is entered."""
        self._maker = sessionmaker
        self._busy_wait = busy_wait
        self._begin = begin
        self._commit = commit
        self._managed = managed
        self._quiet = quiet
        self._on_error = on_error
        self._after_commit = after_commit

    async def __aenter__(self) -> DALSession:
        session = self.session = self._maker()
        if self._managed:
            session._dal_managed = True
        if self._begin is not None:
            try:
                await session.connection(execution_options=self._begin)
            except BaseException as exc:
                await self._end(exc)
                raise
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self._end(exc)
            return
        session = self.session
        if self._commit:
            try:
                if session._dal_misuse is not None:
                    raise session._dal_misuse
                session._dal_check_not_aborted()
                await session.commit()
            except BaseException as error:
                await self._end(error)
                raise
        if (
            session._dal_owner is None
            and not session._dal_discard
            and (self._quiet or not session.in_transaction())
        ):
            await self._close()
        else:
            await _run_to_completion(self._close())
        if self._after_commit is not None:
            await self._after_commit(session)

    async def _end(self, exc: BaseException) -> None:
        """After ``exc`` left the block: close, then raise the layer's error for a driver one."""
        await _run_to_completion(self._close())
        mapped = translate_error(exc) if isinstance(exc, Exception) else None
        if isinstance(mapped, ConcurrencyError | StaleStatementError):
            self.session._dal_retryable = mapped  # db.transaction runs fn again
        if self._on_error is not None:
            error = mapped or exc
            if isinstance(error, AsyncDALError):
                self._on_error(error)
        if mapped is not None:
            raise mapped from exc

    async def _close(self) -> None:
        session = self.session
        if session._dal_owner is not None and not await session.wait_idle(self._busy_wait):
            owner = session._dal_owner
            if owner is not None:
                # The other task overstayed even its command timeout: cancel it, bounded.
                owner.cancel()
                with contextlib.suppress(TimeoutError):
                    await session.wait_idle(1.0)
        session._dal_managed = False
        session._dal_closed = True
        try:
            if session._dal_discard:
                # A call failed in the driver (asyncpg raises on a value it cannot encode
                # after the Parse and before the Sync, leaving the backend in an implicit
                # transaction holding its locks; a connection may be half-closed). Errors are
                # rare: discarding costs a reconnect, checking the state would cost the happy
                # path, and a stuck lock stalls every ALTER TABLE and every read behind it.
                await session.invalidate()
            else:
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
