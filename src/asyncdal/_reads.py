"""The read path: reads outside a unit of work, in one round trip each.

A read that needs no snapshot of its own (``db.gather`` without ``consistent``, ``db.read()``,
``db.get``) runs on a connection of the *read pool*: opened with
``default_transaction_read_only=on`` (a startup setting, or set right after the connect on a URL
with ``target_session_attrs``: see :func:`make_read_only`) and used in autocommit. So a
statement is one round trip: no ``BEGIN READ ONLY`` before it, no ``ROLLBACK`` after it, and
nothing when the connection goes back to the pool (SQLAlchemy's reset on return is a
``ROLLBACK`` only inside a transaction, and there is none). Each statement sees the data
committed when it starts, which is what READ COMMITTED gives inside a transaction too.

Safety stays with the server: every statement there runs in a read-only transaction of its
own, so a write is refused (SQLSTATE 25006) and nothing is ever committed. What a connection
without a transaction cannot do: ``SET LOCAL`` (it has no effect), server-side cursors
(``Repository.stream``), and a plain ``SET`` would outlive the read (it stays with the pooled
connection): such reads belong in ``db.session()``. It guards against mistakes, not against
hostile SQL: a read that runs ``SET default_transaction_read_only = off`` can write (a role
with only SELECT rights is the boundary for that), though its connection is then discarded
rather than handed out again (:func:`guard_read_pool`), as is one a read left in a transaction,
and one whose statement failed in the driver (see :class:`~asyncdal._session.SessionScope`).

With ``Settings.read_pool_size=0`` there is no read pool: the same reads run on the main pool
inside ``BEGIN READ ONLY`` transactions that are rolled back (three round trips).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from asyncdal._errors import AsyncDALError
from asyncdal._guard import NO_TRANSACTION
from asyncdal._session import DALSession, SessionScope

__all__ = ["READ_ONLY", "ReadPath", "guard_read_pool", "make_read_only", "read_server_settings"]

# BEGIN ... READ ONLY on the main pool (no read pool); asyncpg folds it into its BEGIN.
READ_ONLY: dict[str, Any] = {"postgresql_readonly": True}


def guard_read_pool(engine: AsyncEngine) -> None:
    """Never hand out a read-pool connection that is closed, writable or in a transaction.

    A read that ran ``SET default_transaction_read_only = off`` or a bare ``BEGIN`` would leave
    its pooled connection so, and the pool's reset (a ``ROLLBACK`` only inside a transaction
    the driver began) would not notice. The server reports the setting's changes to the
    driver (PostgreSQL 14+) and the driver knows its transaction state, so this check at
    checkout is local: no round trip. Such a connection is discarded and replaced.
    """

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if driver.is_closed():
            # The server ended it while it sat in the pool (a restart, pg_terminate_backend):
            # a read returns its connection with no ROLLBACK that would have noticed.
            raise DisconnectionError("the server closed this read-pool connection")
        read_only = getattr(driver.get_settings(), "default_transaction_read_only", "on")
        if read_only != "on" or driver.is_in_transaction():
            raise DisconnectionError("a read left this read-pool connection changed")


def read_server_settings(server_settings: dict[str, str]) -> dict[str, str]:
    """The startup settings of a read-pool connection: the main pool's, and read-only."""
    return {**server_settings, "default_transaction_read_only": "on"}


def make_read_only(engine: AsyncEngine) -> None:
    """Every new connection of ``engine`` becomes read-only, once it is established.

    For URLs with ``target_session_attrs`` only (a startup setting is free otherwise):
    asyncpg's check of the host's role (``read-write``, ``primary``: a cluster URL's way to
    find the primary) runs during the connect, and a connection that starts read-only looks
    like a standby to it, on every host. One ``SET`` per new connection instead (pooled
    connections are reused), on the raw DB-API connection.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def read_only(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET default_transaction_read_only = on")
        finally:
            cursor.close()


class ReadPath:
    """Where reads outside a unit of work run: the read pool, or the main pool as a fallback.

    ``sessionmaker`` makes sessions on the read engine; :meth:`session` opens one for a read
    (on the main pool, in a ``BEGIN READ ONLY`` transaction).
    """

    def __init__(self, engine: AsyncEngine, *, read_pool: bool) -> None:
        """Sessions on ``engine``; ``read_pool``: it is a read pool (autocommit, read-only)."""
        self.engine = engine
        self.read_pool = read_pool
        self.sessionmaker: async_sessionmaker[DALSession] = async_sessionmaker(
            engine,
            class_=DALSession,
            expire_on_commit=False,
            # Autocommit on the read pool: a stream (server-side cursor) is refused clearly.
            info={NO_TRANSACTION: True} if read_pool else None,
        )

    def session(
        self, *, busy_wait: float, on_error: Callable[[AsyncDALError], None] | None = None
    ) -> SessionScope:
        """A session for one read: read-only, never committed, driver errors mapped.

        On the read pool a read leaves nothing to roll back (its close never waits), and its
        connection is checked out by its first statement. A connection whose call failed in
        the driver is discarded, not returned (see :class:`SessionScope`).
        """
        if self.read_pool:
            return SessionScope(
                self.sessionmaker, busy_wait=busy_wait, quiet=True, on_error=on_error
            )
        return SessionScope(
            self.sessionmaker, busy_wait=busy_wait, begin=READ_ONLY, on_error=on_error
        )
