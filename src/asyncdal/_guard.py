"""The door of a :class:`~asyncdal.DALSession`: one task at a time, driver errors mapped once.

An ``AsyncSession`` (and the one asyncpg connection beneath it) runs one statement at a time.
When two tasks share one, SQLAlchemy or asyncpg fail somewhere deep inside ("another operation
is in progress", ``IllegalStateChangeError``...) or, worse, the tasks interleave inside one
transaction. Every database call of the session goes through :func:`guarded_call`, which
notices the second task at the door and raises :class:`ConcurrentSessionUseError` instead.

The guarded calls are also the one place where the layer calls the database, so driver errors
are mapped here and nowhere else (see :mod:`asyncdal._error_mapping`): repositories, reads and
sessions above it see the layer's exceptions only. The door does what each call needs and no
more: a call on a session nobody else holds checks four attributes and goes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.asyncio.result import AsyncCommon

from asyncdal._error_mapping import is_stale_statement, sqlstate_of, translate_error
from asyncdal._errors import (
    ConcurrencyError,
    ConcurrentSessionUseError,
    SessionClosedError,
    StaleStatementError,
    TransactionUsageError,
)

if TYPE_CHECKING:
    from asyncdal._session import DALSession

__all__ = [
    "NO_TRANSACTION",
    "UNGUARDED",
    "GuardedConnection",
    "guard",
    "guarded_call",
    "managed_message",
]

#: ``Session.info`` key of a session that never has a transaction (the read pool's autocommit).
NO_TRANSACTION = "asyncdal.no_transaction"

# The coroutine methods of AsyncSession that are deliberately NOT guarded: the clean-up path
# (the layer's scopes and ``AsyncSession.__aexit__`` close the session), which must always be
# able to return the connection to the pool, and the class-level ``close_all``. Every other
# coroutine method is guarded explicitly in DALSession's body, and tests/test_session_guard.py
# fails if SQLAlchemy grows one that is neither.
UNGUARDED = frozenset({"aclose", "close", "close_all", "invalidate", "reset"})
# Reads that may be run again after a stale cached statement, when nothing else happened in
# the transaction yet (writes go through flush, which is not retried).
_REPEATABLE = frozenset({"execute", "get", "get_one", "scalar", "scalars"})
_ENDS_TRANSACTION = frozenset({"commit", "rollback"})
_Method = TypeVar("_Method", bound=Callable[..., Coroutine[Any, Any, Any]])


def guard(method: _Method) -> _Method:
    """``method`` of ``AsyncSession``, entered through the session's door (same signature).

    The wrapper is a plain function returning :func:`guarded_call`'s coroutine, not a
    coroutine awaiting it: one frame less for every suspension of every database call to
    pass through on its way in and out. Nothing runs before the coroutine is awaited, but
    the streams' check of where they are called, which raises at once (as
    :class:`GuardedConnection`'s streams do).
    """
    name = method.__name__
    if name in ("stream", "stream_scalars"):

        @functools.wraps(method)
        def guarded_stream(self: DALSession, *args: Any, **kwargs: Any) -> Any:
            check_can_stream(self, f"DALSession.{name}()")
            return guarded_call(self, name, method, args, kwargs)

        return cast(_Method, _mark_coroutine(guarded_stream))

    @functools.wraps(method)
    def guarded(self: DALSession, *args: Any, **kwargs: Any) -> Any:
        return guarded_call(self, name, method, args, kwargs)

    return cast(_Method, _mark_coroutine(guarded))


def _mark_coroutine(function: Callable[..., Any]) -> Any:  # the caller's _Method
    """``function`` (which returns a coroutine) marked as a coroutine function where possible.

    ``inspect.iscoroutinefunction`` then holds for the guarded methods as it does for
    ``AsyncSession``'s, on Python 3.12 and later (3.11 has no public way to say so).
    """
    mark = getattr(inspect, "markcoroutinefunction", None)
    return function if mark is None else mark(function)


def managed_message(method: str) -> str:
    """Why ``method`` is refused on the session of ``db.transaction``."""
    return (
        f"DALSession.{method}() was called inside db.transaction(): the transaction belongs "
        "to db.transaction, which commits when fn returns, rolls back when it raises, and "
        "may run fn again. Return from fn to commit; raise to roll back."
    )


def check_can_stream(session: DALSession, call: str) -> None:
    """Refuse a streamed result (a server-side cursor) in a session without a transaction.

    asyncpg opens a cursor only inside a transaction; on the read pool there is none, and its
    refusal (SQLSTATE 25P01, "cursor cannot be created outside of a transaction") would say
    nothing of where the stream belongs. Nothing has been sent when this raises.
    """
    if session.info.get(NO_TRANSACTION):
        raise TransactionUsageError(
            f"{call} was called in a read session (db.read(), a db.gather() read): a streamed "
            "result is a server-side cursor, which needs a transaction, and a read session "
            "runs each statement on its own, without one. Stream inside `async with "
            "db.session() as s:`, or read in pages (Repository.list with cursor=)."
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
    if session._dal_managed and name in _ENDS_TRANSACTION:
        raise TransactionUsageError(managed_message(name))
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


def _fresh(session: DALSession) -> bool:
    """Nothing happened in the session's transaction yet, and a rollback would lose nothing.

    Dirty and deleted objects are persistent ones, so in the identity map: checking the map
    covers them without building their sets. A session bound to a caller's connection is
    never fresh: its rollback may end the caller's own transaction (SQLAlchemy's
    ``join_transaction_mode``), and a statement run again after it would run outside it.
    """
    sync = session.sync_session
    return not (
        sync.in_transaction() or sync.identity_map or sync.new or isinstance(sync.bind, Connection)
    )


async def guarded_call(
    session: DALSession,
    name: str,
    method: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run ``method(session, *args, **kwargs)`` as the session's only user; map its errors."""
    task = asyncio.current_task()
    if (
        session._dal_owner is not None
        or session._dal_stream_owner is not None
        or session._dal_closed
        or session._dal_managed
    ) and _check_door(session, name, task):
        # A guarded method calling another one (scalars() calls execute()).
        return await method(session, *args, **kwargs)
    session._dal_owner = task
    try:
        # A stale cached statement (DDL elsewhere) that is the transaction's first can simply
        # be run again: known only for reads, and only asked when one fails.
        fresh = name in _REPEATABLE and _fresh(session)
        try:
            result = await method(session, *args, **kwargs)
        except Exception as exc:
            if not (fresh and is_stale_statement(exc)):
                raise
            # Roll back and run it once more on the cleared caches; nothing the caller did
            # is lost.
            await AsyncSession.rollback(session)
            result = await method(session, *args, **kwargs)
        if isinstance(result, AsyncCommon):
            # A streamed result keeps the connection busy until it is closed or exhausted.
            session._dal_add_stream(result, task)
        return result
    except Exception as exc:
        mapped = _mapped(session, exc)
        if isinstance(exc, TimeoutError):
            # The client gave up waiting (command_timeout): the connection's state is unknown
            # and the server may be gone. Discard it now rather than wait again at ROLLBACK.
            with contextlib.suppress(Exception):
                await session.invalidate()
        if mapped is exc:
            raise
        raise mapped from exc
    finally:
        session._dal_owner = None
        if session._dal_idle is not None:
            session._dal_idle.set()
            session._dal_idle = None


def _mapped(session: DALSession, exc: Exception) -> BaseException:
    """The exception to raise for ``exc`` (the layer's one, or ``exc`` itself)."""
    mapped = translate_error(exc, from_driver=True)
    if mapped is None:
        return exc
    if isinstance(mapped, ConcurrencyError | StaleStatementError):
        session._dal_retryable = mapped
    if isinstance(exc, DBAPIError | OSError | TimeoutError) and not _from_server(exc):
        # Failed in the driver, not on the server: the exchange may have stopped half-way
        # (see SessionScope), so the connection will not go back to the pool.
        session._dal_discard = True
    elif sqlstate_of(exc) is not None and session.in_transaction():
        # The server failed a statement: its transaction (or the innermost savepoint) is
        # aborted, and a COMMIT would quietly roll everything back. Remember it, so the
        # layer's commit raises instead of reporting success (see DALSession.check_not_aborted).
        sync = session.sync_session
        session._dal_aborted = (mapped, sync.get_transaction(), sync.get_nested_transaction())
    return mapped


def _from_server(exc: BaseException) -> bool:
    """Whether the server answered ``exc`` (an ErrorResponse, after which it is in sync).

    asyncpg raises some client-side errors with a server error's class and SQLSTATE (a value
    it cannot encode is ``asyncpg.DataError``, 22000), so the class does not tell; what the
    server sent always names its severity (the protocol's ``S`` field), what asyncpg made up
    never does.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:  # orig and __cause__ links, a short chain
        if isinstance(current, asyncpg.PostgresError) and current.severity is not None:
            return True
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return False


class GuardedConnection(AsyncConnection):
    """The session's ``AsyncConnection``, whose database calls go through the session's door.

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

        return guarded_call(self._dal_session, f"connection().{name}", call, args, kwargs)

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
        check_can_stream(self._dal_session, "connection().stream()")
        return _StartedStream(self._call("stream", args, kwargs))

    def stream_scalars(self, *args: Any, **kwargs: Any) -> Any:
        """``AsyncConnection.stream_scalars``, guarded, like :meth:`stream`."""
        check_can_stream(self._dal_session, "connection().stream_scalars()")
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
