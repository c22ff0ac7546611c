"""Where a read runs: on a streaming replica when one is fresh enough, else on the primary.

Reads that need no unit of work (``db.read()``, ``db.gather``) go to the replicas in turn. A
replica that cannot be reached is skipped for a while (1 s, doubling up to 10 s) and then tried
again; with no replica left, the primary serves.

Read-your-writes: after a commit through the primary, :class:`ReadRouter` remembers the
primary's WAL insert position in a ``ContextVar`` (so per request, per task tree). A later read
in that context runs only on a replica whose ``pg_last_wal_replay_lsn()`` has reached it,
waiting up to ``replica_wait`` seconds for one, then on the primary. The position also travels
as a signed token (``db.write_token()``, see ``_write_tokens``), for a read in another request;
a token that does not verify is ignored and counted. A context that wrote nothing never
waits. The replay position seen on each replica is remembered, so reads already covered by it
are not checked again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from asyncdal._error_mapping import translate_error, wrap_errors
from asyncdal._errors import DatabaseUnavailableError, InvalidTypeError
from asyncdal._reads import ReadPath
from asyncdal._session import DALSession, SessionScope
from asyncdal._stats import Counters
from asyncdal._urls import mask_url
from asyncdal._write_tokens import TokenSigner

__all__ = [
    "PRIMARY_ONLY",
    "SERVER",
    "SNAPSHOT_READ",
    "ReadRouter",
    "Server",
    "parse_lsn",
]

_LSN = re.compile(r"\A([0-9A-F]{1,8})/([0-9A-F]{1,8})\Z")
_RETRY_FIRST = 1.0
_RETRY_MAX = 10.0
_POLL_FIRST = 0.002
_POLL_MAX = 0.05
# A consistent group's transactions: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, rolled
# back when the session closes. asyncpg folds the options into its BEGIN.
SNAPSHOT_READ: dict[str, Any] = {"postgresql_readonly": True, "isolation_level": "REPEATABLE READ"}
#: The key of ``session.info`` that names the server a routed read runs on.
SERVER = "asyncdal.server"
#: The position recorded when the commit's own could not be read: only the primary will do.
PRIMARY_ONLY = 2**64 - 1


def parse_lsn(text: str) -> int:
    """A WAL position as PostgreSQL prints it (``16/B374D848``) as one integer."""
    match = _LSN.fullmatch(text)
    if match is None:
        raise ValueError(f"not a WAL position: {text[:40]!r}")
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


class Server:
    """One server a read can run on: its pools, its health and the replay position last seen.

    ``read_path``: where plain reads run (a read pool, or BEGIN READ ONLY on ``sessionmaker``);
    ``sessionmaker``: transactions of a consistent group (its snapshot).
    """

    def __init__(
        self,
        read_path: ReadPath,
        sessionmaker: async_sessionmaker[DALSession],
        *,
        primary: bool,
    ) -> None:
        self.read_path = read_path
        self.engine: AsyncEngine = read_path.engine
        self.sessionmaker = sessionmaker
        self.primary = primary
        self.replayed = 0
        self.down_until = 0.0
        self.failures = 0

    def mark_down(self, now: float) -> None:
        """Skip this replica for a while; longer after each failure in a row."""
        self.failures += 1
        self.down_until = now + min(_RETRY_MAX, _RETRY_FIRST * 2 ** (self.failures - 1))

    def mark_up(self) -> None:
        """It answered: use it normally again."""
        self.failures = 0
        self.down_until = 0.0

    def __repr__(self) -> str:
        role = "primary" if self.primary else "replica"
        return f"<{role} {mask_url(self.engine.url)}>"


async def _fetch_lsn(server: Server, function: str) -> int | None:
    """``function()`` (a WAL position function) on ``server``, in one round trip."""
    async with server.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        # The driver directly, outside a transaction: one round trip, no BEGIN/ROLLBACK.
        value = await raw.driver_connection.fetchval(f"SELECT {function}()::text")  # type: ignore[union-attr]
    return None if value is None else parse_lsn(value)


class ReadRouter:
    """Chooses the server of each read; see the module docstring."""

    def __init__(
        self,
        primary: Server,
        replicas: list[Server],
        *,
        wait: float,
        busy_wait: float,
        signer: TokenSigner,
        counters: Counters,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.wait = wait
        self.busy_wait = busy_wait
        self.signer = signer
        self.counters = counters
        self._adopted: ContextVar[tuple[int, str]] = ContextVar(f"asyncdal_adopted_{id(self)}")
        self._turn = 0
        self._written: ContextVar[int | None] = ContextVar(f"asyncdal_written_{id(self)}")

    async def record_write(self) -> None:
        """Remember the primary's current WAL position as this context's last write."""
        if not self.replicas:
            return
        try:
            with wrap_errors():
                lsn = await _fetch_lsn(self.primary, "pg_current_wal_insert_lsn")
        except DatabaseUnavailableError:
            # The commit succeeded; failing now would make the caller think it did not. Not
            # knowing its position, send this context's reads to the primary.
            lsn = PRIMARY_ONLY
        if lsn is not None:
            self._written.set(max(lsn, self._written.get(None) or 0))

    def write_token(self) -> str | None:
        """The signed token of this context's last write, or ``None`` if it wrote nothing.

        The adopted token itself while the context wrote nothing newer: a request that only
        read hands back the token it came with (its cookie is not renewed).
        """
        lsn = self._written.get(None)
        if lsn is None:
            return None
        adopted = self._adopted.get(None)
        if adopted is not None and adopted[0] == lsn:
            return adopted[1]
        return self.signer.sign(lsn)

    def _position(self, token: str) -> int | None:
        """The position of a verified ``token``; ``None`` (counted) for any other string."""
        if not isinstance(token, str):
            raise InvalidTypeError(
                f"a write token is a string from db.write_token(), got {type(token).__name__}"
            )
        lsn = self.signer.verify(token)
        if lsn is None:
            self.counters.write_tokens_ignored += 1
        return lsn

    def verified(self, token: str | None) -> str | None:
        """``token`` if it verifies, else ``None`` (counted): a read ignores a bad token."""
        return None if token is None or self._position(token) is None else token

    def adopt(self, token: str) -> None:
        """Make ``token``'s write part of this context: its later reads see that write."""
        lsn = self._position(token)
        if lsn is not None and lsn > (self._written.get(None) or -1):
            self._written.set(lsn)
            self._adopted.set((lsn, token))

    def target(self, after: str | None) -> int | None:
        """The WAL position a read must see: the context's last write or the token's."""
        positions = [self._written.get(None), None if after is None else self._position(after)]
        known = [p for p in positions if p is not None]
        return max(known) if known else None

    @asynccontextmanager
    async def session(
        self, *, after: str | None = None, snapshot: bool = False, on: object | None = None
    ) -> AsyncIterator[DALSession]:
        """A session for one read on the chosen server, closed at the end (never committed).

        ``snapshot``: in a REPEATABLE READ READ ONLY transaction, begun; else on the server's
        read path. ``on``: that server and no other (the rest of a consistent group). The
        server chosen is ``session.info[SERVER]``.
        """
        target = self.target(after)
        candidates = [on] if isinstance(on, Server) else await self._candidates(target)
        loop = asyncio.get_running_loop()
        for index, server in enumerate(candidates):
            async with AsyncExitStack() as stack:
                try:
                    session = await stack.enter_async_context(self._scope(server, snapshot))
                    if not snapshot:
                        # Check the connection out now, where failing over is still possible.
                        await session.connection()
                except DatabaseUnavailableError:
                    if server.primary or index == len(candidates) - 1:
                        raise
                    server.mark_down(loop.time())
                    continue  # the session is closed on the way out of the block
                if not server.primary:
                    server.mark_up()
                session.info[SERVER] = server
                try:
                    yield session
                except Exception as exc:
                    # A raw driver error is mapped by the session's scope, on the way out.
                    lost = translate_error(exc) or exc
                    if isinstance(lost, DatabaseUnavailableError) and not server.primary:
                        server.mark_down(loop.time())
                    raise
                return

    def _scope(self, server: Server, snapshot: bool) -> SessionScope:
        if snapshot:
            return SessionScope(server.sessionmaker, busy_wait=self.busy_wait, begin=SNAPSHOT_READ)
        return server.read_path.session(busy_wait=self.busy_wait)

    def _up(self, now: float) -> list[Server]:
        """The replicas not skipped right now, starting with the next one in turn."""
        up = [r for r in self.replicas if r.down_until <= now]
        if not up:
            return []
        self._turn = (self._turn + 1) % len(up)
        return up[self._turn :] + up[: self._turn]

    async def _candidates(self, target: int | None) -> list[Server]:
        """Servers to try in order: replicas that have reached ``target``, then the primary."""
        loop = asyncio.get_running_loop()
        up = self._up(loop.time())
        if target is None or not up:
            return [*up, self.primary]
        if target == PRIMARY_ONLY:
            return [self.primary]
        deadline = loop.time() + self.wait
        delay = _POLL_FIRST
        while True:
            reached = [r for r in up if r.replayed >= target]
            if reached:
                return [*reached, self.primary]
            for replica in up:
                await self._refresh(replica, deadline)
            up = [r for r in up if r.down_until <= loop.time()]
            reached = [r for r in up if r.replayed >= target]
            if reached:
                return [*reached, self.primary]
            remaining = deadline - loop.time()
            if not up or remaining <= 0:
                return [self.primary]
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _POLL_MAX)

    async def _refresh(self, replica: Server, deadline: float) -> None:
        """Ask ``replica`` how far it has replayed (bounded by ``deadline``)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(max(deadline, loop.time() + 0.001)):
                with wrap_errors():
                    lsn = await _fetch_lsn(replica, "pg_last_wal_replay_lsn")
        except TimeoutError:
            return  # slow to answer: not reached in time, but not known to be down
        except DatabaseUnavailableError:
            replica.mark_down(loop.time())
            return
        replica.mark_up()
        if lsn is not None:  # None: not in recovery (promoted); never "reached"
            replica.replayed = max(replica.replayed, lsn)
