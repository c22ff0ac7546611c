"""Fan-out: run reads concurrently, each in its own ``AsyncSession`` (``db.gather``).

The right way to do what seeds 002 and 003 get wrong: every concurrent read gets its own session
(and so its own connection) from the one ``async_sessionmaker``. Reads of one ``Database`` share
a bound below the pool's capacity, so a fan-out queues instead of starving the other users of
the pool; a group of reads is a ``TaskGroup``, so the first failure cancels the rest and every
session is closed, whatever happens, before ``gather`` returns or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypedDict, TypeVar

from sqlalchemy import func, select, text

from asyncdal._errors import (
    DatabaseUnavailableError,
    InvalidQueryError,
    InvalidTypeError,
    QueryTimeoutError,
    StaleStatementError,
)
from asyncdal._limiter import Slots
from asyncdal._read_retry import lost_read_backoff
from asyncdal._replicas import SERVER
from asyncdal._session import DALSession

__all__ = ["GatherOptions", "OpenRead", "Read", "gather_reads"]

T = TypeVar("T")

#: One read: called with its own session, returns an awaitable of its result.
Read = Callable[[DALSession], Awaitable[T]]

#: Opens a session for one read (closed at the end of the block, whatever happens).
#: ``snapshot``: in a REPEATABLE READ READ ONLY transaction, begun; else on the read path.
#: ``on``: on that server (``None``: any suitable; a routed read names its server in
#: ``session.info[SERVER]``).
OpenRead = Callable[[bool, object | None], AbstractAsyncContextManager[DALSession]]


class GatherOptions(TypedDict, total=False):
    """The keyword options of :meth:`Database.gather`."""

    consistent: bool
    timeout: float | None
    limit: int | None
    after: str | None


# What pg_export_snapshot() returns: hex fields joined by dashes ("00000003-0000001B-1").
_SNAPSHOT_ID = re.compile(r"\A[0-9A-F]{1,16}(?:-[0-9A-F]{1,16}){1,2}\Z")


class _SharedSnapshot:
    """One exported snapshot, and the count of transactions still to import it."""

    def __init__(self, importers: int) -> None:
        self.snapshot_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.server: object | None = None  # where the snapshot was exported
        self._pending = importers
        self.all_imported = asyncio.Event()
        if importers == 0:
            self.all_imported.set()

    def imported(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self.all_imported.set()


async def _run_plain_read(open_read: OpenRead, read: Read[T]) -> T:
    """Run one read in a session of its own on the read path (one round trip per statement).

    A read that meets a stale cached statement (DDL elsewhere) runs once more in a new
    session: it wrote nothing, and the caches are cleared by then. So does a read whose
    connection died (see :mod:`asyncdal._read_retry`). One frame for all of it, since every
    suspension of the read passes through each frame above it.
    """
    stale = False
    lost = 0
    while True:
        try:
            async with open_read(False, None) as session:
                return await read(session)
        except StaleStatementError:
            if stale:
                raise
            stale = True
        except DatabaseUnavailableError as exc:
            delay = lost_read_backoff(exc, lost)
            if delay is None:
                raise
            await asyncio.sleep(delay)
            lost += 1


async def _run_snapshot_read(
    open_read: OpenRead, read: Read[T], role: str, shared: _SharedSnapshot
) -> T:
    if role == "export":
        async with open_read(True, None) as session:
            snapshot_id = (await session.execute(select(func.pg_export_snapshot()))).scalar_one()
            shared.server = session.info.get(SERVER)
            shared.snapshot_id.set_result(snapshot_id)
            result = await read(session)
            # The snapshot lives as long as the exporting transaction: keep it open until
            # every other read has imported it.
            await shared.all_imported.wait()
            return result
    snapshot_id = await shared.snapshot_id
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise RuntimeError(f"unexpected snapshot id from the server: {snapshot_id!r}")
    # On the exporter's server: a snapshot exists on one server only.
    async with open_read(True, shared.server) as session:
        # SET TRANSACTION SNAPSHOT takes no bind parameter. The id is inlined, but it comes
        # from the server's pg_export_snapshot() and was checked above to be hex digits and
        # dashes only, so it cannot carry SQL.
        await session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'"))
        shared.imported()
        return await read(session)


async def _in_one_transaction(
    open_read: OpenRead,
    slots: Slots,
    reads: Sequence[Read[Any]],
    timeout: float | None,  # noqa: ASYNC109 (a group deadline, applied with asyncio.timeout)
) -> tuple[Any, ...]:
    """The reads in order, in one snapshot (REPEATABLE READ READ ONLY), on one connection."""
    try:
        async with asyncio.timeout(timeout):
            await slots.acquire(1)
            try:
                async with open_read(True, None) as session:
                    return tuple([await read(session) for read in reads])
            finally:
                slots.release(1)
    except TimeoutError as exc:
        raise QueryTimeoutError(
            f"db.gather() of {len(reads)} reads did not finish within {timeout} s; "
            "the reads were cancelled, and the server was asked to cancel their queries"
        ) from exc


def _check(reads: Sequence[object], timeout: float | None, limit: int | None) -> None:
    for read in reads:
        if inspect.isawaitable(read):
            if inspect.iscoroutine(read):
                read.close()  # no "never awaited" warning on top of this error
            raise InvalidTypeError(
                "db.gather() takes callables that receive a session, e.g. "
                "`lambda s: SocialQueries(s).top_users()`, not awaitables: an awaitable "
                "created outside gather() would not run in a session of its own"
            )
        if not callable(read):
            raise InvalidTypeError(f"db.gather() takes callables, got {type(read).__name__}")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise InvalidTypeError(
                f"timeout must be a number of seconds or None, got {type(timeout).__name__}"
            )
        if not timeout > 0:  # also NaN
            raise InvalidQueryError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise InvalidTypeError(f"limit must be an integer or None, got {type(limit).__name__}")
    if limit is not None and limit < 1:
        raise InvalidQueryError(f"limit must be a positive integer or None, got {limit!r}")


async def gather_reads(
    open_read: OpenRead,
    slots: Slots,
    reads: Sequence[Read[Any]],
    *,
    consistent: bool = False,
    timeout: float | None = None,  # noqa: ASYNC109 (a group deadline, applied with asyncio.timeout)
    limit: int | None = None,
    one_connection: bool = False,
) -> tuple[Any, ...]:
    """Run ``reads`` concurrently, each in its own session; see :meth:`Database.gather`.

    ``open_read`` opens each read's session (plain reads on the read path; a consistent group
    in snapshot transactions). ``slots`` is the limiter shared by every gather of one
    ``Database`` on that pool: it bounds how many connections all fan-outs together may hold.
    ``one_connection``: a consistent group runs its reads one after another in one REPEATABLE
    READ transaction instead (behind a transaction pooler, an exporter holding a server
    connection while its importers queue for one deadlocks when the pooler's pool is small).
    """
    _check(reads, timeout, limit)
    if not reads:
        return ()
    if consistent and one_connection:
        return await _in_one_transaction(open_read, slots, reads, timeout)
    width = min(len(reads), limit or slots.total, slots.total)
    shared: _SharedSnapshot | None = None
    if consistent:
        if len(reads) > 1 and width < 2:
            raise InvalidQueryError(
                "consistent=True with several reads needs limit >= 2: one connection holds "
                "the exported snapshot while the others import it"
            )
        shared = _SharedSnapshot(importers=len(reads) - 1)
    results: list[Any] = [None] * len(reads)
    failures: list[BaseException] = []
    # This call's own bound; none needed when every read may run at once.
    local = asyncio.Semaphore(width) if width < len(reads) else contextlib.nullcontext()

    async def run(index: int, read: Read[Any]) -> None:
        try:
            async with local:
                if shared is not None:
                    role = "export" if index == 0 else "import"
                    results[index] = await _run_snapshot_read(open_read, read, role, shared)
                    return
                await slots.acquire(1)
                try:
                    results[index] = await _run_plain_read(open_read, read)
                finally:
                    slots.release(1)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            failures.append(exc)  # in the order they happened: the first is raised
            raise

    # A consistent group takes all its connections at once (see Slots); a plain one per read.
    held = width if shared is not None else 0
    try:
        async with asyncio.timeout(timeout):
            if held:
                await slots.acquire(held)
            try:
                async with asyncio.TaskGroup() as group:
                    for index, read in enumerate(reads):
                        group.create_task(run(index, read))
            finally:
                if held:
                    slots.release(held)
    except TimeoutError as exc:
        raise QueryTimeoutError(
            f"db.gather() of {len(reads)} reads did not finish within {timeout} s; "
            "the reads were cancelled, and the server was asked to cancel their queries"
        ) from exc
    except BaseExceptionGroup:
        if failures:
            raise failures[0] from failures[0].__cause__
        raise
    return tuple(results)
