"""The engines of a :class:`Database`: one per pool, all built the same way from its settings.

What every connection gets: the URL's libpq parameters translated for asyncpg, the
application name and statement timeout as server settings, a client-side command timeout, TCP
keepalive, the connect errors asyncpg leaves bare mapped to :class:`DatabaseUnavailableError`,
and (for the read pool) read-only autocommit sessions.

On a multi-host URL (a Patroni or hand-built failover cluster), while no host fits (the
primary is gone and no standby promoted yet, or the one server is restarting), opening a
connection keeps trying the hosts with backoff for up to ``Settings.failover_timeout`` seconds,
so a failover costs callers latency instead of errors.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

from asyncdal._compat import await_in_greenlet
from asyncdal._config import Settings, timeout_ms
from asyncdal._errors import DatabaseUnavailableError
from asyncdal._network import install_network_hooks
from asyncdal._observe import Observer
from asyncdal._reads import guard_read_pool, make_read_only, read_server_settings
from asyncdal._slow_query import log_slow_queries
from asyncdal._stats import ObservedPool
from asyncdal._url_params import connect_args_from_url, url_query

__all__ = ["create_engine", "settle_connects"]


def create_engine(
    settings: Settings,
    observer: Observer,
    pool_size: int,
    *,
    read_only: bool,
    url: URL | None = None,
) -> AsyncEngine:
    """An engine with the settings' pool options; ``read_only``: the read pool's.

    ``url``: a replica's (default: the primary's). The pool reports to ``observer``'s
    counters (``db.stats()``), slow statements are logged when the settings ask for it, and
    every new connection gets TCP keepalive.
    """
    url = settings.url if url is None else url
    query = url_query(url)
    connect_args = connect_args_from_url(query)
    server_settings = {
        **connect_args.pop("server_settings", {}),
        "application_name": settings.application_name,
    }
    if settings.statement_timeout is not None:
        server_settings["statement_timeout"] = str(timeout_ms(settings.statement_timeout))
    if settings.client_check_interval is not None:
        interval = timeout_ms(settings.client_check_interval)
        server_settings["client_connection_check_interval"] = str(interval)
    if settings.pgbouncer:
        # Behind a transaction pooler, consecutive transactions of one client connection
        # run on different server connections: a named prepared statement may be missing
        # there, or its name taken by another client's. Unnamed statements only.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    options: dict[str, Any] = {}
    # A read-pool connection is read-only from its startup packet (no round trip), unless
    # asyncpg must first check the host's role (target_session_attrs): a connection that
    # starts read-only looks like a standby to that check, so it is made read-only just after.
    set_read_only_after_connect = read_only and "target_session_attrs" in connect_args
    if read_only:
        options["isolation_level"] = "AUTOCOMMIT"
        if not set_read_only_after_connect:
            server_settings = read_server_settings(server_settings)
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
    _connect_with_failover(engine, settings.connect_timeout, settings.effective_failover_timeout)
    if set_read_only_after_connect:
        make_read_only(engine)
    if read_only:
        guard_read_pool(engine)
    else:
        _discard_closed(engine)
    if isinstance(engine.pool, ObservedPool):
        engine.pool.dal_counters = observer.counters
    if settings.slow_query_threshold is not None:
        log_slow_queries(engine.sync_engine, settings.slow_query_threshold)
    install_network_hooks(engine.sync_engine)
    return engine


def _discard_closed(engine: AsyncEngine) -> None:
    """Never hand a unit of work a pooled connection the server (or a proxy) already closed.

    After a failover the pool still holds connections to the old primary; the driver saw
    them closed (the server's goodbye, a reset from HAProxy's ``shutdown-sessions``), so this
    check at checkout is local, no round trip. Without it the next unit of work on each
    would fail, and a unit of work is not retried. (The read pool's guard checks this too.)
    """

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


# Errors of a connect attempt that a failover explains: nothing listening (the server is
# down), no answer in time, a server starting up or shutting down (57P03), or no host of the
# list with the wanted role yet (the old primary demoted, the new one not promoted).
_FAILOVER_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.CannotConnectNowError,
    asyncpg.TargetServerAttributeNotMatched,
)
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0
# Each engine's connect attempts still running (see _connect_once). Kept here rather than in
# an engine_disposed listener: any engine-level listener makes every Connection dispatch
# events, which costs each unit of work CPU.
_attempts: weakref.WeakKeyDictionary[Engine, set[asyncio.Future[Any]]] = weakref.WeakKeyDictionary()


async def settle_connects(engine: AsyncEngine, *, within: float) -> None:
    """Wait, at most ``within`` seconds, for ``engine``'s connect attempts still running.

    After a dispose, so that no attempt is still running (and cancelled by the loop's
    shutdown, its connection left open) once the database is closed.
    """
    attempts = _attempts.get(engine.sync_engine)
    if attempts:
        await asyncio.wait(set(attempts), timeout=within)


def _connect_with_failover(engine: AsyncEngine, connect_timeout: float, failover: float) -> None:
    """Open connections through failovers, and map the connect errors asyncpg leaves bare.

    With ``failover`` > 0, a connect that fails for a reason a failover explains is tried
    again (the URL's whole host list each time) with backoff, until ``failover`` seconds have
    passed since the first try; then, or at once with ``failover`` = 0, the last error is
    raised as :class:`DatabaseUnavailableError`. asyncpg raises a bare ``TimeoutError`` when
    the server does not answer in time, and SQLAlchemy passes it through unwrapped. It is only
    recognisable here, at the connect: elsewhere a ``TimeoutError`` may be the caller's own
    (``asyncio.wait_for``).

    Each attempt runs to its end even when its caller is cancelled (see :func:`_connect_once`);
    :func:`settle_connects` waits for the attempts still running.
    """
    attempts: set[asyncio.Future[Any]] = set()
    _attempts[engine.sync_engine] = attempts

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        deadline = time.monotonic() + failover
        backoff = _FIRST_BACKOFF
        while True:
            try:
                return _connect_once(attempts, dialect, cargs, cparams)
            except _FAILOVER_ERRORS as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _unavailable(exc, connect_timeout) from exc
            # The pool's connect runs in SQLAlchemy's greenlet bridge: sleep on the loop.
            await_in_greenlet(asyncio.sleep(min(backoff, left)))
            backoff = min(backoff * 2, _MAX_BACKOFF)


def _connect_once(
    attempts: set[asyncio.Future[Any]], dialect: Dialect, cargs: Any, cparams: Any
) -> Any:
    """One connect attempt, in a task of its own that the caller's cancellation does not reach.

    asyncpg's connect is not safe to cancel midway: cancelled while its TCP connection opens
    (a gather's first failure cancelling its siblings, a timeout, a client gone), the
    SSLRequest probe's future fails later with "unexpected connection_lost() call" and
    nobody retrieves it (asyncpg issues #1211, #1310), whatever the sslmode (prefer, the
    default, as much as require). So the caller stops waiting at once, the attempt finishes
    in the background (bounded by the connect timeout) and its connection, nobody's now, is
    closed.
    """
    attempt = asyncio.ensure_future(greenlet_spawn(dialect.connect, *cargs, **cparams))
    attempts.add(attempt)
    attempt.add_done_callback(attempts.discard)
    try:
        return await_in_greenlet(asyncio.shield(attempt))
    except asyncio.CancelledError:
        attempt.add_done_callback(_close_abandoned)
        raise


def _close_abandoned(attempt: asyncio.Future[Any]) -> None:
    """Close the connection of an attempt whose caller was cancelled; retrieve its error."""
    if attempt.cancelled() or attempt.exception() is not None:
        return
    attempt.result().driver_connection.terminate()


def _unavailable(exc: BaseException, connect_timeout: float) -> DatabaseUnavailableError:
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailableError(
            f"the database did not answer within the connect timeout ({connect_timeout} s)"
        )
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        return DatabaseUnavailableError(
            "no host of the database URL fits its target_session_attrs (during a failover: "
            "no primary yet; see Settings.failover_timeout)"
        )
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return DatabaseUnavailableError(
            "the database is starting up or shutting down and refuses connections"
        )
    # Refused, unreachable, or a TLS handshake that failed (ssl.SSLError is an OSError): only
    # here is a bare OSError known to be the connection's.
    return DatabaseUnavailableError(f"cannot connect to the database: {type(exc).__name__}")
