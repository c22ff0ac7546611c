"""The session class the layer hands out, and its guard against use by two tasks at once.

An ``AsyncSession`` (and the one asyncpg connection beneath it) runs one statement at a time.
When two tasks share one, SQLAlchemy or asyncpg fail somewhere deep inside ("another operation
is in progress", ``IllegalStateChangeError``...) or, worse, the tasks interleave inside one
transaction. :class:`DALSession` notices the second task at the door instead and raises
:class:`ConcurrentSessionUseError`, which says what happened and what to do.

The guarded methods are also the boundary where the layer calls the database, so driver errors
are mapped there, once (see :mod:`asyncdal._error_mapping`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.asyncio.result import AsyncCommon

from asyncdal._compat import SQLALCHEMY_2_1
from asyncdal._error_mapping import is_stale_statement, sqlstate_of, translate_error
from asyncdal._errors import (
    AsyncDALError,
    ConcurrencyError,
    ConcurrentSessionUseError,
    SessionClosedError,
    StaleStatementError,
    TransactionUsageError,
)
from asyncdal._versioning import VersionCheckingSession

__all__ = ["DALSession"]

logger = logging.getLogger("asyncdal.session")

# The coroutine methods of AsyncSession that are deliberately NOT guarded: the clean-up path
# (``AsyncSession.__aexit__`` runs ``close`` in a task of its own, shielded from cancellation),
# which must always be able to return the connection to the pool, and the class-level
# ``close_all``. Every other coroutine method is guarded explicitly in DALSession's body, and
# tests/test_session_guard.py fails if SQLAlchemy grows one that is neither.
UNGUARDED = frozenset({"aclose", "close", "close_all", "invalidate", "reset"})
# Reads that may be run again after a stale cached statement, when nothing else happened in
# the transaction yet (writes go through flush, which is not retried).
_REPEATABLE = frozenset({"execute", "get", "get_one", "scalar", "scalars"})
_Method = TypeVar("_Method", bound=Callable[..., Coroutine[Any, Any, Any]])


def _guard(method: _Method) -> _Method:
    """``method`` of ``AsyncSession``, entered through the owner check (same signature)."""
    name = method.__name__

    @functools.wraps(method)
    async def guarded(self: DALSession, *args: Any, **kwargs: Any) -> Any:
        return await _guarded_call(self, name, method, args, kwargs)

    return guarded  # type: ignore[return-value]


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
    #: Set by the layer's scopes when their block ends.
    _dal_closed: bool = False
    #: Inside db.transaction: commit/rollback/close belong to the layer.
    _dal_managed: bool = False
    #: The first ConcurrentSessionUseError raised for this session (re-raised at the end).
    _dal_misuse: ConcurrentSessionUseError | None = None
    #: A statement the server failed in the open transaction, and the savepoint it was in.
    _dal_aborted: tuple[AsyncDALError, Any] | None = None
    #: The last retryable error (conflict, stale statement) mapped by a call of this session.
    _dal_retryable: ConcurrencyError | StaleStatementError | None = None
    _dal_idle: asyncio.Event | None = None
    _dal_streams: list[Any] | None = None

    # Every coroutine method that talks to the database, guarded (see UNGUARDED for the rest).
    commit = _guard(AsyncSession.commit)
    delete = _guard(AsyncSession.delete)
    execute = _guard(AsyncSession.execute)
    flush = _guard(AsyncSession.flush)
    get = _guard(AsyncSession.get)
    get_one = _guard(AsyncSession.get_one)
    merge = _guard(AsyncSession.merge)
    refresh = _guard(AsyncSession.refresh)
    rollback = _guard(AsyncSession.rollback)
    run_sync = _guard(AsyncSession.run_sync)
    scalar = _guard(AsyncSession.scalar)  # type: ignore[assignment,arg-type]  # mypy: overloads
    scalars = _guard(AsyncSession.scalars)
    stream = _guard(AsyncSession.stream)
    stream_scalars = _guard(AsyncSession.stream_scalars)
    if SQLALCHEMY_2_1:
        delete_all = _guard(AsyncSession.delete_all)
        merge_all = _guard(AsyncSession.merge_all)

    async def close(self) -> None:
        """Close the session (SQLAlchemy's ``close``); refused inside ``db.transaction``."""
        if self._dal_managed:
            raise TransactionUsageError(_managed_message("close"))
        await super().close()

    async def connection(self, *args: Any, **kwargs: Any) -> AsyncConnection:
        """The session's ``AsyncConnection``, guarded like the session itself."""
        conn = await _guarded_call(self, "connection", AsyncSession.connection, args, kwargs)
        return _GuardedConnection(self, conn)

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


def _managed_message(method: str) -> str:
    return (
        f"DALSession.{method}() was called inside db.transaction(): the transaction belongs "
        "to db.transaction, which commits when fn returns, rolls back when it raises, and "
        "may run fn again. Return from fn to commit; raise to roll back."
    )


def _busy_message(method: str, owner: asyncio.Task[Any], intruder: asyncio.Task[Any] | None) -> str:
    return (
        f"DALSession.{method}() was called from task {_task_name(intruder)} while task "
        f"{owner.get_name()!r} is still using the same session. A session (and its one "
        "database connection) runs one statement at a time, so it cannot be shared by "
        "concurrent tasks. Give each task its own session: use `await db.gather(...)` for "
        "concurrent reads, or `async with db.session()` inside each task."
    )


def _task_name(task: asyncio.Task[Any] | None) -> str:
    return repr(task.get_name()) if task is not None else "<no task>"


def _check_door(session: DALSession, name: str, task: asyncio.Task[Any] | None) -> bool:
    """Whether ``task`` may enter; raises if another task holds the session. True: re-entry."""
    if session._dal_closed:
        raise SessionClosedError(
            f"DALSession.{name}() was called after the session's block ended: its connection "
            "went back to the pool and its transaction is over. Open a new session."
        )
    if session._dal_managed and name in ("commit", "rollback"):
        raise TransactionUsageError(_managed_message(name))
    owner = session._dal_owner
    if owner is None or owner.done():
        streamer = session._dal_stream_owner
        if streamer is not None and streamer is not task and not streamer.done():
            if session._dal_open_stream():
                owner = streamer
            else:
                session._dal_stream_owner = None
    if owner is not None and owner is not task and not owner.done():
        error = ConcurrentSessionUseError(_busy_message(name, owner, task))
        session._dal_misuse = session._dal_misuse or error
        raise error
    return owner is task and session._dal_owner is task


async def _guarded_call(
    session: DALSession,
    name: str,
    method: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    task = asyncio.current_task()
    if _check_door(session, name, task):
        # A guarded method calling another one (scalars() calls execute()).
        return await method(session, *args, **kwargs)
    session._dal_owner = task
    try:
        # Nothing happened in this session's transaction yet, and no ORM state would be lost
        # by a rollback: a stale cached statement can simply be run again.
        fresh = not (
            session.in_transaction()
            or session.identity_map
            or session.new
            or session.dirty
            or session.deleted
        )
        try:
            result = await method(session, *args, **kwargs)
        except Exception as exc:
            if not (fresh and name in _REPEATABLE and is_stale_statement(exc)):
                raise
            # The statement was the transaction's first: roll back and run it once more on
            # the cleared caches; nothing the caller did is lost.
            await AsyncSession.rollback(session)
            result = await method(session, *args, **kwargs)
        if isinstance(result, AsyncCommon):
            # A streamed result keeps the connection busy until it is closed or exhausted.
            if session._dal_streams is None:
                session._dal_streams = []
            session._dal_streams.append(result._real_result)
            session._dal_stream_owner = task
        if name in ("commit", "rollback"):
            session._dal_aborted = None  # the failed transaction is over
        return result
    except Exception as exc:
        mapped = translate_error(exc, from_driver=True)
        if mapped is None:
            raise
        if isinstance(mapped, ConcurrencyError | StaleStatementError):
            session._dal_retryable = mapped
        if sqlstate_of(exc) is not None and session.in_transaction():
            # The server failed a statement: its transaction (or the innermost savepoint) is
            # aborted, and a COMMIT would quietly roll everything back. Remember it, so the
            # layer's commit raises instead of reporting success (see check_not_aborted).
            session._dal_aborted = (mapped, session.sync_session.get_nested_transaction())
        if isinstance(exc, TimeoutError):
            # The client gave up waiting (command_timeout): the connection's state is unknown
            # and the server may be gone. Discard it now rather than wait again at ROLLBACK.
            with contextlib.suppress(Exception):
                await session.invalidate()
        raise mapped from exc
    finally:
        _release(session)


def _release(session: DALSession) -> None:
    session._dal_owner = None
    if session._dal_idle is not None:
        session._dal_idle.set()
        session._dal_idle = None


class _GuardedConnection(AsyncConnection):
    """The session's ``AsyncConnection``, whose database calls go through the session's guard.

    A real ``AsyncConnection`` over the same SQLAlchemy connection (``isinstance`` holds, and
    every other method is SQLAlchemy's own); built without registering itself as that
    connection's proxy, so the session keeps handing out its own. The guarded calls run on
    that own proxy. ``stream()`` and ``stream_scalars()`` stay usable both ways, ``await`` and
    ``async with``.
    """

    def __init__(self, session: DALSession, conn: AsyncConnection) -> None:
        """Guard ``conn``, the connection of ``session``."""
        # Not super().__init__: that would make this object the connection's registered proxy.
        self.engine = conn.engine
        self.sync_engine = conn.sync_engine
        self.sync_connection = conn.sync_connection
        self._dal_session = session
        self._dal_conn = conn

    def _call(self, name: str, args: Any, kwargs: Any) -> Coroutine[Any, Any, Any]:
        method = getattr(self._dal_conn, name)

        async def call(_session: DALSession, *a: Any, **k: Any) -> Any:
            return await method(*a, **k)

        return _guarded_call(self._dal_session, f"connection().{name}", call, args, kwargs)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.execute``, guarded."""
        return await self._call("execute", args, kwargs)

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.exec_driver_sql``, guarded."""
        return await self._call("exec_driver_sql", args, kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.scalar``, guarded."""
        return await self._call("scalar", args, kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.scalars``, guarded."""
        return await self._call("scalars", args, kwargs)

    async def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.run_sync``, guarded."""
        return await self._call("run_sync", args, kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.stream``, guarded: ``await`` it or use it as ``async with``."""
        return _StartedStream(self._call("stream", args, kwargs))

    def stream_scalars(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.stream_scalars``, guarded, like :meth:`stream`."""
        return _StartedStream(self._call("stream_scalars", args, kwargs))


class _StartedStream:
    """A guarded ``stream()``: awaitable for its result, or an async context that closes it."""

    def __init__(self, start: Coroutine[Any, Any, Any]) -> None:
        self._start = start
        self._result: Any = None

    def __await__(self) -> Generator[Any, None, Any]:
        return self._start.__await__()

    async def __aenter__(self) -> Any:
        self._result = await self._start
        return self._result

    async def __aexit__(self, *exc_info: object) -> None:
        await self._result.close()
