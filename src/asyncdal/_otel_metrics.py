"""The metric instruments of :mod:`asyncdal.otel`: each one reads ``db.stats()`` when collected.

Nothing is counted twice: the counters are the layer's own (``db.stats()``); OpenTelemetry
observes them at its collection interval, one series per pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from asyncdal._database import Database
from asyncdal._stats import DatabaseStats, PoolStats

__all__ = ["METRICS", "register_metrics"]

# The metric instruments: unit and meaning, all read from db.stats() (Instrumentation.METRICS).
METRICS: dict[str, tuple[str, str]] = {
    "db.client.connection.count": ("{connection}", "open connections, by state (idle, used)"),
    "db.client.connection.max": ("{connection}", "the most connections the pool may open"),
    "db.client.connection.idle.max": ("{connection}", "connections the pool keeps open"),
    "db.client.connection.pending_requests": ("{request}", "tasks waiting for a connection"),
    "db.client.connection.timeouts": ("{timeout}", "checkouts that gave up (pool timeout)"),
    "asyncdal.pool.overflow": ("{connection}", "connections open beyond pool_size"),
    "asyncdal.pool.checkouts": ("{checkout}", "connections handed out"),
    "asyncdal.pool.wait_time": ("s", "time spent getting connections, all checkouts"),
    "asyncdal.gather.calls": ("{call}", "db.gather calls"),
    "asyncdal.gather.reads": ("{read}", "reads submitted to db.gather"),
    "asyncdal.gather.reads.queued": ("{read}", "reads submitted and not running yet"),
    "asyncdal.gather.queue_wait_time": ("s", "time reads spent queued, all reads"),
    "asyncdal.transaction.calls": ("{transaction}", "db.transaction calls"),
    "asyncdal.transaction.retries": ("{retry}", "attempts run again after 40001/40P01"),
    "asyncdal.transaction.concurrency_errors": ("{error}", "transactions out of retries"),
    "asyncdal.query.timeouts": ("{timeout}", "QueryTimeoutError raised to callers"),
    "asyncdal.errors": ("{error}", "layer errors raised to callers, by error.type"),
}


_POOL_NAME = "db.client.connection.pool.name"
# What a metric reads from a snapshot: (value, extra attributes) pairs.
_Values = Iterable[tuple[float, dict[str, Any]]]


def register_metrics(meter: metrics.Meter, db: Database, active: Callable[[], bool]) -> None:
    """Observable instruments that read ``db.stats()`` at each collection, while ``active()``."""
    url = db.url
    address = f"{url.host}:{url.port or 5432}/{url.database}"

    def observe(read: Callable[[DatabaseStats], _Values]) -> Any:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if not active():
                return []
            stats = db.stats()
            return [Observation(value, extra) for value, extra in read(stats)]

        return [callback]

    def gauge(name: str, read: Callable[[DatabaseStats], float]) -> None:
        unit, description = METRICS[name]
        meter.create_observable_up_down_counter(
            name, observe(lambda s: [(read(s), {})]), unit=unit, description=description
        )

    def total(name: str, read: Callable[[DatabaseStats], float]) -> None:
        unit, description = METRICS[name]
        meter.create_observable_counter(
            name, observe(lambda s: [(read(s), {})]), unit=unit, description=description
        )

    def per_pool(
        name: str, read: Callable[[PoolStats], Iterable[tuple[float, dict[str, Any]]]]
    ) -> None:
        # One series per pool (main, read), told apart by the pool name the conventions define.
        unit, description = METRICS[name]
        meter.create_observable_up_down_counter(
            name,
            observe(
                lambda s: [
                    (value, {_POOL_NAME: f"{address} {pool_name}", **extra})
                    for pool_name, p in s.pools.items()
                    for value, extra in read(p)
                ]
            ),
            unit=unit,
            description=description,
        )

    per_pool(
        "db.client.connection.count",
        lambda p: [
            (p.idle, {"db.client.connection.state": "idle"}),
            (p.checked_out, {"db.client.connection.state": "used"}),
        ],
    )
    per_pool("db.client.connection.max", lambda p: [(p.pool_size + p.max_overflow, {})])
    per_pool("db.client.connection.idle.max", lambda p: [(p.pool_size, {})])
    per_pool("asyncdal.pool.overflow", lambda p: [(p.overflow, {})])
    gauge("db.client.connection.pending_requests", lambda s: s.waiting)
    total("db.client.connection.timeouts", lambda s: s.pool_timeouts_total)
    total("asyncdal.pool.checkouts", lambda s: s.checkouts_total)
    total("asyncdal.pool.wait_time", lambda s: s.connection_wait_seconds)
    total("asyncdal.gather.calls", lambda s: s.gathers_total)
    total("asyncdal.gather.reads", lambda s: s.gather_reads_total)
    gauge("asyncdal.gather.reads.queued", lambda s: s.gather_reads_queued)
    total("asyncdal.gather.queue_wait_time", lambda s: s.gather_queue_wait_seconds)
    total("asyncdal.transaction.calls", lambda s: s.transactions_total)
    total("asyncdal.transaction.retries", lambda s: s.transaction_retries_total)
    total("asyncdal.transaction.concurrency_errors", lambda s: s.concurrency_errors_total)
    total("asyncdal.query.timeouts", lambda s: s.query_timeouts_total)
    unit, description = METRICS["asyncdal.errors"]
    meter.create_observable_counter(
        "asyncdal.errors",
        observe(lambda s: [(n, {"error.type": name}) for name, n in sorted(s.errors.items())]),
        unit=unit,
        description=description,
    )
