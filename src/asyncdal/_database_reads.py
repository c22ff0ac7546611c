"""The read side of :class:`Database`: reads outside a unit of work, fan-out, point lookups.

Everything here reads on the read path (the read pool, or a replica chosen by the router) and
never commits: :meth:`~Database.read`, :meth:`~Database.gather`, :meth:`~Database.get` and
:meth:`~Database.get_many`, and the write tokens that carry read-your-writes across requests.
Kept apart from the write side (sessions, transactions, engines) so each file reads on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, Unpack, cast, overload

from sqlalchemy.ext.asyncio import async_sessionmaker

from asyncdal._base import Base
from asyncdal._config import Settings
from asyncdal._errors import NotFoundError
from asyncdal._gather import GatherOptions, Read, gather_reads
from asyncdal._limiter import Slots, gather_slots
from asyncdal._lookups import Lookups
from asyncdal._observe import Observer
from asyncdal._reads import ReadPath
from asyncdal._replicas import SNAPSHOT_READ, ReadRouter
from asyncdal._session import DALSession, SessionScope

__all__ = ["ReadSide"]

M = TypeVar("M", bound=Base)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")


class ReadSide:
    """The read methods of :class:`Database` (a base class; ``Database`` sets the state)."""

    settings: Settings
    observer: Observer
    sessionmaker: async_sessionmaker[DALSession]
    _read_path: ReadPath
    _router: ReadRouter
    _lookups: Lookups
    # The bounds shared by every db.gather of this Database, one per pool. asyncio
    # primitives belong to one event loop, so they are made per loop, lazily.
    _gather_limiters: dict[str, tuple[asyncio.AbstractEventLoop, Slots]]

    def read(self, *, after: str | None = None) -> AbstractAsyncContextManager[DALSession]:
        """A session for reads outside a unit of work: read-only, never committed.

        It runs on the read pool (see ``Settings.read_pool_size``): no transaction, so each
        statement is one round trip and sees what was committed when it started. A write is
        refused by the server (SQLSTATE 25006). For a consistent view over several
        statements, or ``SET LOCAL``, or ``Repository.stream`` (a server-side cursor needs a
        transaction), use ``db.session()``.

        With ``replicas`` configured, it runs on the next replica in turn that has replayed
        this context's last write (``db.session()``/``db.transaction()``) and the write of
        ``after`` (a :meth:`write_token`), waiting up to ``replica_wait`` seconds for one, else
        on the primary. A replica that cannot be reached is skipped; when none is left, the
        primary serves. ``db.get``/``get_many`` read the same way.

        Example::

            async with db.read(after=request.cookies.get("written")) as s:
                top = await SocialQueries(s).top_users(limit=5)
        """
        if self._router.replicas:
            return self._routed_read(after)
        if after is not None:
            self._router.target(after)  # a token that is not one is refused all the same
        # No server to choose: straight to the read pool.
        return self._read_path.session(
            busy_wait=self._router.busy_wait, on_error=self.observer.counters.error
        )

    @asynccontextmanager
    async def _routed_read(self, after: str | None) -> AsyncIterator[DALSession]:
        with self.observer.errors():
            async with self._router.session(after=after) as session:
                yield session

    def write_token(self) -> str | None:
        """An opaque token for this context's last committed write (``None``: no write yet).

        Hand it to the client (a cookie, a header) and pass it back as ``after=`` to
        :meth:`read` or :meth:`gather` in a later request: that read then sees the write even
        on a replica. Only meaningful with ``replicas`` configured.
        """
        return self._router.write_token()

    def read_after(self, token: str) -> None:
        """From now on in this context, replica reads see the write of ``token``.

        The same as passing ``after=token`` to every later :meth:`read`, :meth:`gather` and
        :meth:`get` of this context (this request, and the tasks it starts), and the token
        :meth:`write_token` returns includes it. A token that is not one of
        :meth:`write_token`'s (unsigned or forged, older than 10 minutes, dated in the future)
        is ignored, and counted in ``stats().write_tokens_ignored_total``.
        ``asyncdal.fastapi.ReadYourWrites`` calls it with the token of the request's cookie.
        """
        self._router.adopt(token)

    async def get(self, model: type[M], key: Any) -> M:
        """The ``model`` row with primary key ``key``, read outside any unit of work.

        Concurrent ``db.get`` calls for one model, made in the same event-loop iteration, are
        answered by one query (``WHERE pk = ANY($1)``, up to 500 keys) on the read path; each
        caller gets its own row. Nothing is cached: every call reads what is committed after
        it was made. Use it where many independent tasks look rows up at once (request
        handlers, dashboards, GraphQL resolvers). Not inside a unit of work that must see its
        own uncommitted writes: use ``Repository.get`` on that session.

        Callers of one batch asking for the same key get the same (detached) object.

        Raises:
            NotFoundError: no such row.
            InvalidQueryError: ``key`` does not fit the primary key's type (only this caller
                fails, not the others of its batch).
        """
        obj = await self._lookups.get(model, key)
        if obj is None:
            raise NotFoundError(model.__name__, key)
        return cast(M, obj)

    async def get_many(self, model: type[M], keys: Iterable[Any]) -> list[M]:
        """The ``model`` rows of ``keys``, in their order, on the read path.

        Missing keys are skipped (compare lengths to detect them); duplicates are returned
        once. Up to 500 keys per query, all in one read session.
        """
        return cast(list[M], await self._lookups.get_many(model, list(keys)))

    @overload
    async def gather(self, /, **options: Unpack[GatherOptions]) -> tuple[()]: ...
    @overload
    async def gather(self, r1: Read[T1], /, **options: Unpack[GatherOptions]) -> tuple[T1]: ...
    @overload
    async def gather(
        self, r1: Read[T1], r2: Read[T2], /, **options: Unpack[GatherOptions]
    ) -> tuple[T1, T2]: ...
    @overload
    async def gather(
        self, r1: Read[T1], r2: Read[T2], r3: Read[T3], /, **options: Unpack[GatherOptions]
    ) -> tuple[T1, T2, T3]: ...
    @overload
    async def gather(
        self,
        r1: Read[T1],
        r2: Read[T2],
        r3: Read[T3],
        r4: Read[T4],
        /,
        **options: Unpack[GatherOptions],
    ) -> tuple[T1, T2, T3, T4]: ...
    @overload
    async def gather(
        self,
        r1: Read[T1],
        r2: Read[T2],
        r3: Read[T3],
        r4: Read[T4],
        r5: Read[T5],
        /,
        **options: Unpack[GatherOptions],
    ) -> tuple[T1, T2, T3, T4, T5]: ...
    @overload
    async def gather(
        self,
        r1: Read[T1],
        r2: Read[T2],
        r3: Read[T3],
        r4: Read[T4],
        r5: Read[T5],
        r6: Read[T6],
        /,
        **options: Unpack[GatherOptions],
    ) -> tuple[T1, T2, T3, T4, T5, T6]: ...
    # Seven reads or more: untyped results. Not `*reads` alone: an overload that matches any
    # arity makes mypy give up on lambdas (their types are Any until an overload is chosen, and
    # two candidates then make the whole call Any), so the README's example would lose its types.
    @overload
    async def gather(
        self,
        r1: Read[Any],
        r2: Read[Any],
        r3: Read[Any],
        r4: Read[Any],
        r5: Read[Any],
        r6: Read[Any],
        r7: Read[Any],
        /,
        *reads: Read[Any],
        **options: Unpack[GatherOptions],
    ) -> tuple[Any, ...]: ...
    async def gather(
        self,
        *reads: Read[Any],
        consistent: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (a group deadline, applied with asyncio.timeout)
        limit: int | None = None,
        after: str | None = None,
    ) -> tuple[Any, ...]:
        """Run ``reads`` concurrently, each in its own session; the results in order.

        Each read is a callable that takes a session and returns an awaitable, e.g.
        ``lambda s: SocialQueries(s).top_users(limit=5)``. It runs in a session of its own
        (its own connection) on the read path, as :meth:`read` does: a read-only connection
        without a transaction, so each statement is one round trip and a write is refused;
        nothing is committed. Sharing one session between concurrent tasks is the mistake
        this replaces.

        Args:
            reads: the reads; their results come back in the same order.
            consistent: all reads see one snapshot of the database. The first read's
                transaction (REPEATABLE READ READ ONLY) exports it with
                ``pg_export_snapshot()``; the others import it with ``SET TRANSACTION
                SNAPSHOT``. The cost: one extra round trip per read, every read at REPEATABLE
                READ, the first read's connection held until the last read has imported the
                snapshot, and all the group's connections reserved together before it starts
                (it may wait longer for them, and needs at least two). With
                ``pgbouncer=True`` the reads run one after another in one REPEATABLE READ
                transaction instead: the same snapshot, one server connection, no overlap.
            timeout: seconds for the whole group. When it passes, the reads are cancelled,
                their queries are cancelled on the server too, and :class:`QueryTimeoutError`
                is raised.
            limit: at most this many reads of this call run at once. Whatever the limit,
                reads of all ``gather`` calls of this ``Database`` together hold at most
                ``capacity - capacity // 5`` connections of their pool (at least one; the read
                pool's ``read_capacity``, or the main pool's ``capacity`` for consistent
                groups), so the rest of the service still gets connections. More reads than
                that queue; they do not fail.
            after: a :meth:`write_token`: the reads see that write (see :meth:`read`).

        With ``replicas`` configured, each read runs on a replica as :meth:`read` does (a
        consistent group: all on the one server its first read landed on).

        A plain read's session takes its connection at its first statement, not before
        (without ``replicas``; a replica read takes it at the start, to fail over while it
        still can): a read that hands off to :meth:`get`, e.g.
        ``lambda _s: db.get(User, key)``, holds no idle connection, and the ``db.get`` calls
        of one ``gather`` are coalesced into one query as usual.

        The first read that fails cancels the others, and its exception is raised (driver
        errors mapped to the layer's, e.g. :class:`NotFoundError`). Every session is closed and
        every connection returned before ``gather`` returns or raises, also when it is
        cancelled.

        Example::

            top, trending = await db.gather(
                lambda s: SocialQueries(s).top_users(limit=5),
                lambda s: SocialQueries(s).trending_hashtags(days=7),
            )
        """
        after = self._router.verified(after)  # checked (and counted) once for all the reads

        def open_read(snapshot: bool, on: object | None) -> AbstractAsyncContextManager[DALSession]:
            if self._router.replicas:
                return self._router.session(after=after, snapshot=snapshot, on=on)
            if snapshot:
                return SessionScope(self.sessionmaker, busy_wait=busy_wait, begin=SNAPSHOT_READ)
            return self._read_path.session(busy_wait=busy_wait)

        busy_wait = self._router.busy_wait

        with self.observer.gather(reads, consistent) as observed:
            return await gather_reads(
                open_read,
                self._gather_slots("main" if consistent else "read"),
                observed,
                consistent=consistent,
                timeout=timeout,
                limit=limit,
                one_connection=self.settings.pgbouncer,
            )

    def _gather_slots(self, pool: str) -> Slots:
        """The limiter of plain reads (the read pool) or of consistent groups (the main pool)."""
        capacity = self.settings.capacity
        if not self._read_path.read_pool:
            pool = "main"  # one pool serves both
        elif pool == "read":
            capacity = self.settings.read_capacity
        loop = asyncio.get_running_loop()
        limiter = self._gather_limiters.get(pool)
        if limiter is None or limiter[0] is not loop:
            limiter = self._gather_limiters[pool] = (loop, Slots(gather_slots(capacity)))
        return limiter[1]
