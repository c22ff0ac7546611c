"""Bounded waits on a dead network: TCP keepalive, and a quick close of a broken connection.

A server that vanishes without a word (a host powered off, a firewall dropping packets) leaves
the client waiting on a socket that will never answer. Three things bound that wait:

- asyncpg's ``command_timeout`` (set by :class:`Database` from the settings) bounds each call;
- TCP keepalive on every connection (idle 30 s, then a probe every 10 s, 3 probes) lets the
  kernel notice a dead peer on a connection that is waiting for an answer, after about 60 s;
- when SQLAlchemy discards a broken connection it first tries a polite close, which asyncpg
  bounds by 2 s; over a dead network that close can never succeed, so the layer bounds it by
  :data:`CLOSE_TIMEOUT` instead, then drops the socket. That is the margin ``gather(timeout=t)``
  may take beyond ``t``.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

__all__ = ["CLOSE_TIMEOUT", "KEEPALIVE", "tune_connection"]

#: Seconds a discarded connection may spend saying goodbye to the server.
CLOSE_TIMEOUT = 0.25
#: TCP keepalive: seconds idle before the first probe, seconds between probes, probe count.
KEEPALIVE = (30, 10, 3)


class _QuickCloseConnection(AsyncAdapt_asyncpg_connection):
    """SQLAlchemy's asyncpg connection, with the polite close bounded by CLOSE_TIMEOUT."""

    __slots__ = ()

    async def _terminate_graceful_close(self) -> None:
        await self._connection.close(timeout=CLOSE_TIMEOUT)  # type: ignore[arg-type]
        self._transaction = None


def tune_connection(dbapi_connection: Any) -> None:
    """Keepalive on the new connection's socket, and the bounded close on its adapter."""
    if type(dbapi_connection) is AsyncAdapt_asyncpg_connection:
        # Same layout (no new slots): only the close behaviour changes.
        dbapi_connection.__class__ = _QuickCloseConnection
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
