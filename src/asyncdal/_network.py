"""Bounded waits on a dead network: TCP keepalive, and a quick close of a broken connection.

A server that vanishes without a word (a host powered off, a firewall dropping packets) leaves
the client waiting on a socket that will never answer. Three things bound that wait:

- asyncpg's ``command_timeout`` (set by :class:`Database` from the settings) bounds each call;
- TCP keepalive on every connection (idle 30 s, then a probe every 10 s, 3 probes) lets the
  kernel notice a dead peer on a connection that is waiting for an answer, after about 60 s;
- when SQLAlchemy discards a broken connection (invalidates it) it first tries a polite close,
  which asyncpg bounds by 2 s; over a dead network that close can never succeed. The layer
  terminates the asyncpg connection from the pool's public ``invalidate`` event instead: the
  socket is dropped at once and the polite close that follows has nothing left to do. A
  connection closed for any other reason (returned to a pool being disposed, recycled) still
  says goodbye to the server.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["KEEPALIVE", "install_network_hooks", "tune_connection"]

#: TCP keepalive: seconds idle before the first probe, seconds between probes, probe count.
KEEPALIVE = (30, 10, 3)


def install_network_hooks(engine: Engine) -> None:
    """Keepalive on every new connection; a discarded connection's socket dropped at once."""
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "invalidate", _on_invalidate)


def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    tune_connection(dbapi_connection)


def _on_invalidate(
    dbapi_connection: Any, record: ConnectionPoolEntry, exception: BaseException | None
) -> None:
    # Fired before SQLAlchemy closes an invalidated connection. asyncpg's public terminate()
    # closes the socket without a round trip; SQLAlchemy's close then finds it closed.
    driver_connection = getattr(dbapi_connection, "driver_connection", None)
    if driver_connection is not None and not driver_connection.is_closed():
        driver_connection.terminate()


def tune_connection(dbapi_connection: Any) -> None:
    """TCP keepalive on a new connection's socket (a unix socket is left alone)."""
    # asyncpg has no public accessor for its transport (checked 0.29-0.32): read, never set.
    transport = getattr(dbapi_connection.driver_connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a unix socket: no network to lose
    idle, interval, count = KEEPALIVE
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval)):
            if hasattr(socket, name):  # Linux; macOS has TCP_KEEPALIVE instead
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        if hasattr(socket, "TCP_KEEPCNT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
