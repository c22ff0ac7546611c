"""A network that goes silent (a proxy that stops forwarding, closing nothing): every entry
point fails within its bound instead of hanging, the pool gets its connections back, and the
same Database works once the network is back."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from asyncdal import DALSession, Database, QueryTimeoutError
from tests._proxy import Proxy

pytestmark = pytest.mark.filterwarnings("error")

COMMAND_TIMEOUT = 1.0
# Bounds separate "within its timeout plus the close margin" from "hung" or "2 s more for
# the old polite close": wide for a loaded 2-core machine, far below what they catch.
MARGIN = 1.5


@pytest.fixture
async def proxy(migrated_url: str) -> AsyncIterator[Proxy]:
    target = make_url(migrated_url)
    async with Proxy(target.host or "127.0.0.1", target.port or 5432, lifetime=60) as running:
        yield running


@pytest.fixture
async def silent(migrated_url: str, proxy: Proxy) -> AsyncIterator[Database]:
    """A Database through the proxy, with a short command timeout and no statement timeout."""
    url = make_url(migrated_url).set(host="127.0.0.1", port=proxy.port)
    db = Database.from_url(
        url,
        application_name=f"asyncdal-silent-{secrets.token_hex(3)}",
        command_timeout=COMMAND_TIMEOUT,
        pool_size=4,
        max_overflow=0,
        pool_timeout=10,
    )
    yield db
    await db.dispose()


def _checked_out(db: Database) -> int:
    """Connections checked out of the main pool and the read pool."""
    pools = {db.engine.pool, db.read_engine.pool}
    return sum(int(cast(QueuePool, pool).checkedout()) for pool in pools)


async def _warm(db: Database) -> None:
    """Three open connections in each pool: gather reads use the read pool, sessions the main."""
    await db.gather(*[lambda s: s.execute(text("SELECT 1"))] * 3)

    async def unit() -> None:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))

    await asyncio.gather(*(unit() for _ in range(3)))


async def _timed(coro: Any) -> tuple[BaseException | None, float]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(coro, 30)
    except BaseException as exc:
        return exc, time.perf_counter() - start
    return None, time.perf_counter() - start


async def test_a_session_on_a_silent_network_fails_within_the_command_timeout(
    silent: Database, proxy: Proxy
) -> None:
    await _warm(silent)
    proxy.stall()

    async def unit() -> None:
        async with silent.session() as s:
            await s.execute(text("SELECT 1"))

    async def transaction() -> None:
        await silent.transaction(lambda s: s.execute(text("SELECT 1")))

    for attempt in (unit, transaction):
        error, elapsed = await _timed(attempt())
        assert isinstance(error, QueryTimeoutError), error
        # The call's own timeout, then the discarded connection's bounded close; no second
        # wait for a ROLLBACK over the dead network.
        assert COMMAND_TIMEOUT <= elapsed < COMMAND_TIMEOUT + MARGIN
        assert _checked_out(silent) == 0

    proxy.resume()
    async with silent.session() as s:
        assert await s.scalar(text("SELECT 1")) == 1
    assert _checked_out(silent) == 0


async def test_gather_timeout_returns_within_the_close_margin(
    silent: Database, proxy: Proxy
) -> None:
    await _warm(silent)
    proxy.stall()

    def pid(s: DALSession) -> Any:
        return s.scalar(text("SELECT pg_backend_pid()"))

    error, elapsed = await _timed(silent.gather(pid, pid, pid, timeout=0.3))
    assert isinstance(error, QueryTimeoutError)
    # Before: 0.3 s + asyncpg's 2 s polite close. Now the invalidated connections are
    # terminated (no goodbye awaited over the dead network): 0.3 s plus scheduling.
    assert 0.3 <= elapsed < 0.3 + MARGIN
    assert _checked_out(silent) == 0
    proxy.resume()
    assert len(set(await silent.gather(pid, pid, pid))) == 3


async def test_connections_have_tcp_keepalive(silent: Database) -> None:
    async with silent.session() as s:
        conn = await s.connection()
        raw = await conn.get_raw_connection()
        sock = raw.driver_connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30


def test_the_default_command_timeout_bounds_every_call() -> None:
    db = Database.from_url("postgresql://u@h/d")
    assert db.settings.effective_command_timeout == 120.0
    assert (
        Database.from_url(
            "postgresql://u@h/d", statement_timeout=5
        ).settings.effective_command_timeout
        == 7.0
    )
