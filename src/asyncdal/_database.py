"""The :class:`Database`: its engines and pools, reads outside a unit of work, units of work.

One class, in the order a service meets it: construction; the read side (``read``,
``gather``, ``get``, the write tokens), which reads on the read path and never commits; the
write side (``session``, ``transaction``); operations (``stats``, ``dispose``). How the
engines are built is in ``_engines``, the read path's sessions in ``_reads``, the replica
router in ``_replicas``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast, overload

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from asyncdal._base import Base
from asyncdal._config import Settings
from asyncdal._engines import create_engine, settle_connects
from asyncdal._errors import NotFoundError
from asyncdal._gather import GatherOptions, Read, gather_reads
from asyncdal._limiter import Slots, gather_slots
from asyncdal._lookups import Lookups
from asyncdal._observe import Observer
from asyncdal._reads import ReadPath
from asyncdal._replicas import SNAPSHOT_READ, ReadRouter, Server
from asyncdal._session import DALSession, SessionScope
from asyncdal._stats import DatabaseStats, pool_stats, snapshot
from asyncdal._transaction import DEFAULT_RETRY_FOR, run_transaction
from asyncdal._urls import mask_url
from asyncdal._write_tokens import TokenSigner
from asyncdal._writes import WATCH_WRITES, wrote

__all__ = ["Database"]

T = TypeVar("T")
M = TypeVar("M", bound=Base)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")

logger = logging.getLogger("asyncdal")


def _close_on_return(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """A connection back in a disposed pool: closed now (bounded: the socket is dropped)."""
    if dbapi_connection is not None:
        record.invalidate()


class Database:
    """The entry point: owns the engines (the main pool, the read pool) and session factories.

    Create one per process and share it; it is safe to use from many tasks at once. Every
    session it hands out belongs to one task.

    Example::

        async with Database.from_url("postgresql+asyncpg://app@localhost/app") as db:
            async with db.session() as session:
                session.add(User(username="ada", email="ada@example.org"))
    """

    def __init__(self, settings: Settings) -> None:
        """Build the engines and session factories from ``settings``; nothing connects yet."""
        self.settings = settings
        # Counters for stats(), and the hook asyncdal.otel installs its telemetry on.
        self.observer = Observer()
        self.engine: AsyncEngine = create_engine(
            settings, self.observer, settings.pool_size, read_only=False
        )
        self.sessionmaker: async_sessionmaker[DALSession] = async_sessionmaker(
            self.engine,
            class_=DALSession,
            expire_on_commit=False,
            # With replicas, each unit of work notes whether it wrote (see _writes).
            info=WATCH_WRITES if settings.replicas else None,
        )
        # The read path (see _reads): a pool of read-only autocommit connections, or the main
        # pool with BEGIN READ ONLY when read_pool_size=0.
        has_read_pool = settings.read_capacity > 0
        self.read_engine: AsyncEngine = (
            create_engine(
                settings,
                self.observer,
                settings.read_capacity - settings.max_overflow,
                read_only=True,
            )
            if has_read_pool
            else self.engine
        )
        self._read_path = ReadPath(self.read_engine, read_pool=has_read_pool)
        #: Sessions on the read engine (what :meth:`read` uses, before making them read-only).
        self.read_sessionmaker: async_sessionmaker[DALSession] = self._read_path.sessionmaker
        replicas = [self._replica(url) for url in settings.replicas]
        self._router = ReadRouter(
            Server(self._read_path, self.sessionmaker, primary=True),
            replicas,
            wait=settings.replica_wait,
            busy_wait=self._busy_wait,
            signer=TokenSigner(settings.token_secret),
            counters=self.observer.counters,
        )
        if replicas and settings.token_secret is None:
            logger.warning(
                "replicas are configured without token_secret (ASYNCDAL_TOKEN_SECRET): write "
                "tokens are signed with a random key of this process, so another process of "
                "the service ignores them (its reads may miss this process's writes)"
            )
        self._lookups = Lookups(self.read)
        # The bounds shared by every db.gather of this Database, one per pool. asyncio
        # primitives belong to one event loop, so they are made per loop, lazily.
        self._gather_limiters: dict[str, tuple[asyncio.AbstractEventLoop, Slots]] = {}

    def _replica(self, url: URL) -> Server:
        """A replica's pool: a read pool (or, without one, BEGIN READ ONLY) on ``url``."""
        read_pool = self.settings.read_capacity > 0
        size = self.settings.read_capacity - self.settings.max_overflow
        engine = create_engine(
            self.settings,
            self.observer,
            size if read_pool else self.settings.pool_size,
            read_only=read_pool,
            url=url,
        )
        sessionmaker = async_sessionmaker(engine, class_=DALSession, expire_on_commit=False)
        return Server(ReadPath(engine, read_pool=read_pool), sessionmaker, primary=False)

    @classmethod
    def from_url(cls, url: str | URL, **options: Any) -> Self:
        """A database for ``url``; ``options`` are :class:`Settings` fields (``pool_size``...)."""
        return cls(Settings.from_url(url, **options))

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """A database configured from ``DATABASE_URL`` and ``ASYNCDAL_*`` variables.

        See :meth:`Settings.from_env` for the variables; ``overrides`` win over them.
        """
        return cls(Settings.from_env(**overrides))

    @property
    def _busy_wait(self) -> float:
        # Another task's call on a closing session ends within its command timeout.
        return self.settings.effective_command_timeout + 1.0

    @property
    def url(self) -> URL:
        """The database URL. Its ``str()`` and ``repr()`` mask the password."""
        return self.settings.url

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

    def session(self) -> AbstractAsyncContextManager[DALSession]:
        """A unit of work: commits when the block ends, rolls back if it raises.

        The session is always closed and its connection returned to the pool, also when the
        block is cancelled; using it after the block raises :class:`SessionClosedError`.
        Driver errors raised in the block become the layer's exceptions
        (:class:`DuplicateError`, :class:`DatabaseUnavailableError`...); the caller's own
        exceptions pass through unchanged. If another task was caught using the session
        (:class:`ConcurrentSessionUseError`), nothing is committed: leaving the block waits
        for that task's call to end, rolls back, and raises the error again.

        Example::

            async with db.session() as s:
                s.add(User(username="ada", email="ada@example.org"))
        """
        return SessionScope(
            self.sessionmaker,
            busy_wait=self._busy_wait,
            commit=True,
            on_error=self.observer.counters.error,
            # Also when the block committed by itself; only replicas need to know.
            after_commit=self._record_if_wrote if self._router.replicas else None,
        )

    async def transaction(
        self,
        fn: Callable[[DALSession], Awaitable[T]],
        *,
        retries: int | None = None,
        retry_for: float = DEFAULT_RETRY_FOR,
        isolation: str | None = None,
    ) -> T:
        """Run ``fn(session)`` in its own session and transaction, commit, return its result.

        A serialization failure or deadlock (SQLSTATE 40001/40P01), or the connection lost
        before COMMIT was sent, rolls back and runs ``fn`` again in a new session after a
        jittered exponential backoff, for up to ``retry_for`` seconds from the first run of
        ``fn`` (and at most ``retries`` more times, if given); then :class:`ConcurrencyError` (with
        ``attempts``), or the connection's :class:`DatabaseUnavailableError`. A connection
        lost during COMMIT: when the database may fail over (``Settings.failover_timeout`` > 0, the
        default on a multi-host URL), a unit of work that wrote costs one more round trip before
        COMMIT, and a new connection then tells whether it committed (its result is returned) or not
        (``fn`` runs again); otherwise, or when that cannot be told, the error says the outcome is
        unknown. There, a lost connection is also retried for ``failover_timeout`` seconds beyond
        ``retry_for``. Nothing else is retried: other errors are raised at once, mapped to the
        layer's exceptions. ``fn`` may run more than once, so it must not have side effects outside
        the database.

        Args:
            fn: the unit of work, e.g. ``lambda s: OrderRepository(s).place(user_id, items)``.
            retries: at most this many extra attempts (``0``: run once); default: as many as
                fit in ``retry_for``.
            retry_for: the retries' time budget in seconds (default 10; ``0``: run once).
            isolation: ``"READ COMMITTED"``, ``"REPEATABLE READ"`` or ``"SERIALIZABLE"``;
                default: the server's (normally READ COMMITTED).

        Example::

            order = await db.transaction(
                lambda s: OrderRepository(s).place(user_id, {sku_id: 2}), isolation="SERIALIZABLE"
            )
        """
        last: list[DALSession] = []
        with self.observer.transaction(isolation, retries) as on_retry:
            result = await run_transaction(
                self.sessionmaker,
                fn,
                retries=retries,
                retry_for=retry_for,
                isolation=isolation,
                on_retry=on_retry,
                on_attempt=last.append if self._router.replicas else None,
                busy_wait=self._busy_wait,
                failover=self.settings.effective_failover_timeout,
            )
        if last and wrote(last[-1]):
            await self._router.record_write()
        return result

    async def _record_if_wrote(self, session: DALSession) -> None:
        """After a committed ``db.session()`` block: remember its WAL position if it wrote."""
        if wrote(session):
            await self._router.record_write()

    def stats(self) -> DatabaseStats:
        """A snapshot of the pools (size, checked out, overflow, waiting) and of the layer's work.

        Cheap (a few attribute reads), so a health endpoint or a metrics scraper may call it
        often. See :class:`DatabaseStats` for the fields.

        Example::

            stats = db.stats()
            if stats.waiting:
                log.warning("%d tasks wait for a connection", stats.waiting)
        """
        settings = self.settings
        pools = {
            "main": pool_stats(
                self.engine.sync_engine.pool,
                pool_size=settings.pool_size,
                max_overflow=settings.max_overflow,
            )
        }
        read_size = settings.read_capacity - settings.max_overflow
        if self.read_engine is not self.engine:
            pools["read"] = pool_stats(
                self.read_engine.sync_engine.pool,
                pool_size=read_size,
                max_overflow=settings.max_overflow,
            )
        for number, replica in enumerate(self._router.replicas, start=1):
            pools[f"replica{number}"] = pool_stats(
                replica.engine.sync_engine.pool,
                pool_size=read_size if settings.read_capacity > 0 else settings.pool_size,
                max_overflow=settings.max_overflow,
            )
        return snapshot(self.observer.counters, pools)

    def engines(self) -> list[AsyncEngine]:
        """Every engine this database owns: the main pool's, the read pool's, each replica's.

        For tools that attach to engines (``asyncdal.otel`` does); most code needs none.
        """
        engines = [self.engine]
        if self.read_engine is not self.engine:
            engines.append(self.read_engine)
        engines += [replica.engine for replica in self._router.replicas]
        return engines

    async def dispose(self) -> None:
        """Close every pooled connection. The database can still be used afterwards.

        Connections in use at that moment (reads and units of work in flight) are closed when
        they come back, each at once (not handed out again, not left open in the old pool).
        """
        for engine in self.engines():
            # SQLAlchemy replaces the pool and closes the idle connections of the old one; a
            # connection still checked out goes back to the old pool later and would stay
            # open there, unused, until the garbage collector drops it.
            old = engine.sync_engine.pool
            await engine.dispose()
            await settle_connects(engine, within=self.settings.connect_timeout + 1)
            if not event.contains(old, "checkin", _close_on_return):
                event.listen(old, "checkin", _close_on_return)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    def __repr__(self) -> str:
        return f"<Database {mask_url(self.url)} pool_size={self.settings.pool_size}>"
