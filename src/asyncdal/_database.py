"""The :class:`Database`: one engine, one session factory, and the ways to use them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack, cast, overload

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from asyncdal._base import Base
from asyncdal._config import Settings, mask_url, timeout_ms
from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import DatabaseUnavailableError, NotFoundError
from asyncdal._gather import GatherOptions, Read, gather_reads
from asyncdal._limiter import Slots, gather_slots
from asyncdal._lookups import Lookups
from asyncdal._network import tune_connection
from asyncdal._observe import Observer
from asyncdal._reads import ReadPath, guard_read_pool, read_server_settings
from asyncdal._replicas import ReadRouter, Server
from asyncdal._session import DALSession, check_not_aborted, session_scope
from asyncdal._slow_query import log_slow_queries
from asyncdal._stats import DatabaseStats, ObservedPool, pool_stats, snapshot
from asyncdal._transaction import run_transaction
from asyncdal._url_params import connect_args_from_url, url_query

__all__ = ["Database"]

M = TypeVar("M", bound=Base)
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")


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
        self.engine: AsyncEngine = self._create_engine(settings.pool_size, read_only=False)
        self.sessionmaker: async_sessionmaker[DALSession] = async_sessionmaker(
            self.engine, class_=DALSession, expire_on_commit=False
        )
        # The read path (see _reads): a pool of read-only autocommit connections, or the main
        # pool with BEGIN READ ONLY when read_pool_size=0.
        has_read_pool = settings.read_capacity > 0
        self.read_engine: AsyncEngine = (
            self._create_engine(settings.read_capacity - settings.max_overflow, read_only=True)
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
        )
        self._lookups = Lookups(self.read)
        # The bounds shared by every db.gather of this Database, one per pool. asyncio
        # primitives belong to one event loop, so they are made per loop, lazily.
        self._gather_limiters: dict[str, tuple[asyncio.AbstractEventLoop, Slots]] = {}

    def _replica(self, url: URL) -> Server:
        """A replica's pool: a read pool (or, without one, BEGIN READ ONLY) on ``url``."""
        read_pool = self.settings.read_capacity > 0
        size = self.settings.read_capacity - self.settings.max_overflow
        engine = self._create_engine(
            size if read_pool else self.settings.pool_size, read_only=read_pool, url=url
        )
        sessionmaker = async_sessionmaker(engine, class_=DALSession, expire_on_commit=False)
        return Server(ReadPath(engine, read_pool=read_pool), sessionmaker, primary=False)

    def _create_engine(
        self, pool_size: int, *, read_only: bool, url: URL | None = None
    ) -> AsyncEngine:
        """An engine with the settings' pool options; ``read_only``: the read pool's.

        ``url``: a replica's (default: the primary's).
        """
        settings = self.settings
        url = settings.url if url is None else url
        query = url_query(url)
        connect_args = connect_args_from_url(query)
        server_settings = {
            **connect_args.pop("server_settings", {}),
            "application_name": settings.application_name,
        }
        if settings.statement_timeout is not None:
            server_settings["statement_timeout"] = str(timeout_ms(settings.statement_timeout))
        if settings.pgbouncer:
            # Behind a transaction pooler, consecutive transactions of one client connection
            # run on different server connections: a named prepared statement may be missing
            # there, or its name taken by another client's. Unnamed statements only.
            connect_args["statement_cache_size"] = 0
            connect_args["prepared_statement_cache_size"] = 0
        options: dict[str, Any] = {}
        if read_only:
            server_settings = read_server_settings(server_settings)
            options["isolation_level"] = "AUTOCOMMIT"
        engine = create_async_engine(
            # The query parameters are translated into connect_args, not passed on as-is; a
            # multi-host list stays: SQLAlchemy makes it asyncpg's host and port lists.
            url.set(query={"host": url.query["host"]} if "host" in url.query else {}),
            pool_size=pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
            pool_pre_ping=settings.pool_pre_ping,
            echo=settings.echo,
            hide_parameters=True,
            poolclass=ObservedPool,
            connect_args={
                **connect_args,
                "server_settings": server_settings,
                "timeout": settings.connect_timeout,
                "command_timeout": settings.effective_command_timeout,
            },
            **options,
        )
        _map_connect_timeout(engine, settings.connect_timeout)
        if read_only:
            guard_read_pool(engine)
        if isinstance(engine.pool, ObservedPool):
            engine.pool.dal_counters = self.observer.counters
        if settings.slow_query_threshold is not None:
            log_slow_queries(engine.sync_engine, settings.slow_query_threshold)
        event.listen(engine.sync_engine, "connect", _tune)
        return engine

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

    @asynccontextmanager
    async def session(self) -> AsyncIterator[DALSession]:
        """A unit of work: commits when the block ends, rolls back if it raises.

        The session is always closed and its connection returned to the pool, also when the
        block is cancelled; using it after the block raises :class:`SessionClosedError`.
        Driver errors raised in the block become the layer's exceptions
        (:class:`DuplicateError`, :class:`DatabaseUnavailableError`...); the caller's own
        exceptions pass through unchanged. If another task was caught using the session
        (:class:`ConcurrentSessionUseError`), nothing is committed: leaving the block waits
        for that task's call to end, rolls back, and raises the error again.
        """
        with self.observer.errors():
            async with session_scope(self.sessionmaker, busy_wait=self._busy_wait) as session:
                with wrap_errors():
                    yield session
                    if session._dal_misuse is not None:
                        raise session._dal_misuse
                    check_not_aborted(session)
                    await session.commit()
            # Also when the block committed by itself (in_transaction() is False again then).
            await self._router.record_write()

    @asynccontextmanager
    async def read(self, *, after: str | None = None) -> AsyncIterator[DALSession]:
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
        with self.observer.errors():
            async with self._router.session(after=after) as (_, session):
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
        :meth:`write_token` returns includes it. :class:`InvalidQueryError` if ``token`` is
        not one of :meth:`write_token`'s. ``asyncdal.fastapi.ReadYourWrites`` calls it with
        the token of the request's cookie.
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
        self._router.target(after)  # a bad token fails here, before any read starts

        def open_read(
            snapshot: bool, on: object | None
        ) -> AbstractAsyncContextManager[tuple[object, DALSession]]:
            return self._router.session(after=after, snapshot=snapshot, on=on)

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

    async def transaction(
        self,
        fn: Callable[[DALSession], Awaitable[T1]],
        *,
        retries: int = 3,
        isolation: str | None = None,
    ) -> T1:
        """Run ``fn(session)`` in its own session and transaction, commit, return its result.

        A serialization failure or deadlock (SQLSTATE 40001/40P01) rolls back and runs ``fn``
        again in a new session, up to ``retries`` more times, after a jittered exponential
        backoff; then :class:`ConcurrencyError` (with ``attempts``). Nothing else is retried:
        other errors are raised at once, mapped to the layer's exceptions. ``fn`` may run more
        than once, so it must not have side effects outside the database.

        Args:
            fn: the unit of work, e.g. ``lambda s: OrderRepository(s).place(user_id, items)``.
            retries: extra attempts after a conflict (``0``: run once).
            isolation: ``"READ COMMITTED"``, ``"REPEATABLE READ"`` or ``"SERIALIZABLE"``;
                default: the server's (normally READ COMMITTED).

        Example::

            order = await db.transaction(
                lambda s: OrderRepository(s).place(user_id, {sku_id: 2}), isolation="SERIALIZABLE"
            )
        """
        with self.observer.transaction(isolation, retries) as on_retry:
            result = await run_transaction(
                self.sessionmaker,
                fn,
                retries=retries,
                isolation=isolation,
                on_retry=on_retry,
                busy_wait=self._busy_wait,
            )
        await self._router.record_write()
        return result

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
        """Close every pooled connection. The database can still be used afterwards."""
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        for replica in self._router.replicas:
            await replica.engine.dispose()

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


def _tune(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    tune_connection(dbapi_connection)


def _map_connect_timeout(engine: AsyncEngine, seconds: float) -> None:
    """Make asyncpg's connect timeout a :class:`DatabaseUnavailableError`.

    asyncpg raises a bare ``TimeoutError`` when the server does not answer in time, and
    SQLAlchemy passes it through unwrapped. It is only recognisable here, at the connect:
    elsewhere a ``TimeoutError`` may be the caller's own (``asyncio.wait_for``).
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except TimeoutError as exc:
            raise DatabaseUnavailableError(
                f"the database did not answer within the connect timeout ({seconds} s)"
            ) from exc
        except OSError as exc:
            # Refused, unreachable, or a TLS handshake that failed (ssl.SSLError is an
            # OSError): only here is a bare OSError known to be the connection's.
            raise DatabaseUnavailableError(
                f"cannot connect to the database: {type(exc).__name__}"
            ) from exc
