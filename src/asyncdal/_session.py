"""The session class the layer hands out, and its guard against use by two tasks at once.

An ``AsyncSession`` (and the one asyncpg connection beneath it) runs one statement at a time.
When two tasks share one, SQLAlchemy or asyncpg fail somewhere deep inside ("another operation
is in progress", ``IllegalStateChangeError``...) or, worse, the tasks interleave inside one
transaction. :class:`DALSession` notices the second task at the door instead and raises
:class:`ConcurrentSessionUseError`, which says what happened and what to do.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._errors import ConcurrentSessionUseError
from asyncdal._versioning import VersionCheckingSession

__all__ = ["DALSession"]

# Every coroutine method that talks to the database through the session. ``close``,
# ``invalidate`` and ``reset`` are deliberately not guarded: they are the clean-up path
# (``AsyncSession.__aexit__`` runs ``close`` in a task of its own, shielded from cancellation),
# and clean-up must always be able to return the connection to the pool.
_GUARDED = (
    "connection",
    "commit",
    "delete",
    "delete_all",
    "execute",
    "flush",
    "get",
    "get_one",
    "merge",
    "merge_all",
    "refresh",
    "rollback",
    "run_sync",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
)


class DALSession(AsyncSession):
    """An ``AsyncSession`` as handed out by :class:`Database`, guarded against sharing.

    It behaves exactly like SQLAlchemy's ``AsyncSession``, except that it belongs to one task
    at a time: while one task is inside a database call (``execute``, ``get``, ``flush``,
    ``commit``...), a call from another task raises :class:`ConcurrentSessionUseError` instead
    of corrupting the session. Handing a session from task to task, one after the other, is
    allowed. For concurrent reads use ``await db.gather(...)``, which gives each read its own
    session.

    The check costs about a microsecond per call: one ``asyncio.current_task()`` and two
    attribute writes.
    """

    # The task currently inside a guarded method; a class default, so every way of building
    # a session (the sessionmaker, or DALSession(bind=...) as the tests do) gets it.
    _dal_owner: asyncio.Task[Any] | None = None
    # Names the row when an optimistic-locking write loses (StaleWriteError).
    sync_session_class = VersionCheckingSession


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


def _guard(
    method: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """Wrap one coroutine method of ``AsyncSession`` with the owner check."""
    name = method.__name__

    @functools.wraps(method)
    async def guarded(self: DALSession, *args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        owner = self._dal_owner
        if owner is not None:
            if owner is not task:
                raise ConcurrentSessionUseError(_busy_message(name, owner, task))
            # A guarded method calling another one (scalars() calls execute()).
            return await method(self, *args, **kwargs)
        self._dal_owner = task
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._dal_owner = None

    return guarded


for _name in _GUARDED:
    # Some names appeared in later SQLAlchemy releases; guard what this one has.
    if hasattr(AsyncSession, _name):
        setattr(DALSession, _name, _guard(getattr(AsyncSession, _name)))
