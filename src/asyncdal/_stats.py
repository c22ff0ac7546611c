"""What a :class:`Database` has been doing: cheap counters and their typed snapshot.

The counters are plain integers and floats bumped on the event loop's thread (the pool's
checkout runs there too, inside SQLAlchemy's greenlet), so they need no lock; a snapshot is
:meth:`Database.stats`. The pool's own numbers (size, checked out, overflow) are read from the
pool when the snapshot is taken; what the pool does not count (who is waiting for a
connection, and how long they waited) :class:`ObservedPool` counts around its checkout.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, PoolProxiedConnection, QueuePool

from asyncdal._errors import ConcurrencyError, QueryTimeoutError

__all__ = ["Counters", "DatabaseStats", "ObservedPool", "PoolStats", "pool_stats", "snapshot"]


class Counters:
    """The running totals behind :class:`DatabaseStats` (one per :class:`Database`)."""

    def __init__(self) -> None:
        self.connection_waiting = 0
        self.connection_checkouts = 0
        self.connection_wait_seconds = 0.0
        self.pool_timeouts = 0
        self.gathers = 0
        self.gather_reads = 0
        self.gather_reads_queued = 0
        self.gather_queue_wait_seconds = 0.0
        self.transactions = 0
        self.transaction_retries = 0
        self.concurrency_errors = 0
        self.query_timeouts = 0
        self.write_tokens_ignored = 0
        self.errors: Counter[str] = Counter()

    def error(self, exc: BaseException) -> None:
        """Count one layer error that reached the caller, by class."""
        self.errors[type(exc).__name__] += 1
        if isinstance(exc, QueryTimeoutError):
            self.query_timeouts += 1
        elif isinstance(exc, ConcurrencyError):
            self.concurrency_errors += 1


@dataclass(frozen=True, kw_only=True)
class PoolStats:
    """One connection pool of a :class:`Database`: ``"main"``, ``"read"`` (the read pool),
    ``"replica1"``... (each replica's).

    Attributes:
        pool_size: connections the pool keeps open (the setting).
        max_overflow: extra connections it may open under load (the setting).
        connections: connections open now (idle and checked out).
        checked_out: connections in use now.
        idle: open connections waiting in the pool.
        overflow: connections open beyond ``pool_size`` now.
    """

    pool_size: int
    max_overflow: int
    connections: int
    checked_out: int
    idle: int
    overflow: int


@dataclass(frozen=True, kw_only=True)
class DatabaseStats:
    """A snapshot of a :class:`Database`'s pool and activity since it was created.

    Gauges (``checked_out``, ``waiting``...) are the values at the moment of the snapshot;
    counters (``*_total`` and the seconds) only grow. Durations are in seconds. The pool
    fields add up every pool of the database (the main pool, the read pool if it has one,
    each replica's); ``pools`` has each one.

    Attributes:
        pool_size: connections the pools keep open (the settings).
        max_overflow: extra connections they may open under load (the settings).
        connections: connections open now (idle and checked out).
        checked_out: connections in use now.
        idle: open connections waiting in a pool.
        overflow: connections open beyond ``pool_size`` now.
        pools: each pool by name (``"main"``, ``"read"``, ``"replica1"``...).
        waiting: tasks waiting for a connection now (including one being opened).
        checkouts_total: connections handed out by the pool.
        connection_wait_seconds: time spent getting connections, all checkouts together.
        pool_timeouts_total: checkouts that gave up after ``pool_timeout``.
        gathers_total: ``db.gather`` calls.
        gather_reads_total: reads submitted to ``db.gather``.
        gather_reads_queued: reads submitted and not yet running (waiting for their turn
            under the gather limit, a connection, or their ``BEGIN``).
        gather_queue_wait_seconds: time reads spent queued, all reads together.
        transactions_total: ``db.transaction`` calls.
        transaction_retries_total: attempts run again after a serialization failure or
            deadlock.
        concurrency_errors_total: transactions that ran out of retries
            (:class:`ConcurrencyError`).
        query_timeouts_total: :class:`QueryTimeoutError` raised to callers.
        errors: the layer's errors raised to callers, by class name.
    """

    pool_size: int
    max_overflow: int
    connections: int
    checked_out: int
    idle: int
    overflow: int
    pools: MappingProxyType[str, PoolStats]
    waiting: int
    checkouts_total: int
    connection_wait_seconds: float
    pool_timeouts_total: int
    gathers_total: int
    gather_reads_total: int
    gather_reads_queued: int
    gather_queue_wait_seconds: float
    transactions_total: int
    transaction_retries_total: int
    concurrency_errors_total: int
    write_tokens_ignored_total: int = 0
    query_timeouts_total: int
    errors: MappingProxyType[str, int] = field(
        default_factory=lambda: MappingProxyType({})  # an empty, read-only mapping
    )

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain ``dict``/``int``/``float`` values, ready for ``json.dumps``.

        ``pools`` becomes ``{name: {field: value}}`` and ``errors`` ``{class name: count}``
        (the snapshot's own read-only mappings are not JSON-encodable).
        """
        # dataclasses.asdict would deep-copy the mappingproxy objects and fail on them.
        result: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        result["pools"] = {name: asdict(pool) for name, pool in self.pools.items()}
        result["errors"] = dict(self.errors)
        return result


def pool_stats(pool: Pool, *, pool_size: int, max_overflow: int) -> PoolStats:
    """The current numbers of one pool."""
    if isinstance(pool, QueuePool):
        checked_out, idle = pool.checkedout(), pool.checkedin()
    else:  # a pool that keeps nothing (NullPool) does not count its connections
        checked_out, idle = 0, 0
    connections = checked_out + idle
    return PoolStats(
        pool_size=pool_size,
        max_overflow=max_overflow,
        connections=connections,
        checked_out=checked_out,
        idle=idle,
        overflow=max(0, connections - pool_size),
    )


def snapshot(counters: Counters, pools: Mapping[str, PoolStats]) -> DatabaseStats:
    """The current :class:`DatabaseStats` of ``counters`` and ``pools``."""

    def total(field: str) -> int:
        return sum(getattr(p, field) for p in pools.values())

    return DatabaseStats(
        pool_size=total("pool_size"),
        max_overflow=total("max_overflow"),
        connections=total("connections"),
        checked_out=total("checked_out"),
        idle=total("idle"),
        overflow=total("overflow"),
        pools=MappingProxyType(dict(pools)),
        waiting=counters.connection_waiting,
        checkouts_total=counters.connection_checkouts,
        connection_wait_seconds=counters.connection_wait_seconds,
        pool_timeouts_total=counters.pool_timeouts,
        gathers_total=counters.gathers,
        gather_reads_total=counters.gather_reads,
        gather_reads_queued=counters.gather_reads_queued,
        gather_queue_wait_seconds=counters.gather_queue_wait_seconds,
        transactions_total=counters.transactions,
        transaction_retries_total=counters.transaction_retries,
        concurrency_errors_total=counters.concurrency_errors,
        write_tokens_ignored_total=counters.write_tokens_ignored,
        query_timeouts_total=counters.query_timeouts,
        errors=MappingProxyType(dict(counters.errors)),
    )


class ObservedPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting waiters and wait time around each checkout.

    The pool has events for a connection handed out, but none for a caller starting to wait,
    so the count lives here. ``Database`` attaches its :class:`Counters` after creating the
    engine; ``recreate`` (what ``engine.dispose()`` does) hands them to the new pool.
    """

    dal_counters: Counters | None = None

    def connect(self) -> PoolProxiedConnection:
        """Check a connection out, counting the wait (and a pool timeout)."""
        counters = self.dal_counters
        if counters is None:
            return super().connect()
        counters.connection_waiting += 1
        started = time.perf_counter()
        try:
            connection = super().connect()
        except sa_exc.TimeoutError:
            counters.pool_timeouts += 1
            raise
        finally:
            counters.connection_waiting -= 1
            counters.connection_wait_seconds += time.perf_counter() - started
        counters.connection_checkouts += 1
        return connection

    def recreate(self) -> ObservedPool:
        """A fresh pool with the same settings and the same counters."""
        new: Any = super().recreate()
        new.dal_counters = self.dal_counters
        assert isinstance(new, ObservedPool)
        return new
