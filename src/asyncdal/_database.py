"""The :class:`Database`: its engines and sessions, units of work and transactions.

The read side (``read``, ``gather``, ``get``) is in ``_database_reads``; how the engines are
built, in ``_engines``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from asyncdal._config import Settings
from asyncdal._database_reads import ReadSide
from asyncdal._engines import create_engine, settle_connects
from asyncdal._lookups import Lookups
from asyncdal._observe import Observer
from asyncdal._reads import ReadPath
from asyncdal._replicas import ReadRouter, Server
from asyncdal._session import DALSession, SessionScope
from asyncdal._stats import DatabaseStats, pool_stats, snapshot
from asyncdal._transaction import DEFAULT_RETRY_FOR, run_transaction
from asyncdal._urls import mask_url
from asyncdal._write_tokens import TokenSigner
from asyncdal._writes import WATCH_WRITES, wrote

__all__ = ["Database"]

T = TypeVar("T")

logger = logging.getLogger("asyncdal")


def _close_on_return(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """A connection back in a disposed pool: closed now (bounded: the socket is dropped)."""
    if dbapi_connection is not None:
        record.invalidate()


class Database(ReadSide):
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
        self._gather_limiters = {}

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
