"""The engines of a :class:`Database`: one per pool, all built the same way from its settings.

What every connection gets: the URL's libpq parameters translated for asyncpg, the
application name and statement timeout as server settings, a client-side command timeout, TCP
keepalive, the connect errors asyncpg leaves bare mapped to :class:`DatabaseUnavailableError`,
and (for the read pool) read-only autocommit sessions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from asyncdal._config import Settings, timeout_ms
from asyncdal._errors import DatabaseUnavailableError
from asyncdal._network import install_network_hooks
from asyncdal._observe import Observer
from asyncdal._reads import guard_read_pool, make_read_only, read_server_settings
from asyncdal._slow_query import log_slow_queries
from asyncdal._stats import ObservedPool
from asyncdal._url_params import connect_args_from_url, url_query

__all__ = ["create_engine"]


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
    _map_connect_timeout(engine, settings.connect_timeout)
    if set_read_only_after_connect:
        make_read_only(engine)
    if read_only:
        guard_read_pool(engine)
    if isinstance(engine.pool, ObservedPool):
        engine.pool.dal_counters = observer.counters
    if settings.slow_query_threshold is not None:
        log_slow_queries(engine.sync_engine, settings.slow_query_threshold)
    install_network_hooks(engine.sync_engine)
    return engine


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
