"""Where :class:`Database` reports what it does: always to its counters, to telemetry if on.

The hooks are the few places only the layer can see: a ``db.gather`` call and each of its reads
(how long a read queued before it ran), a ``db.transaction`` and its retries, and the layer
errors that reach a caller. Telemetry (``asyncdal.otel``) plugs in through the
:class:`Telemetry` protocol; when none is installed each hook is an ``is None`` test, and this
module never imports OpenTelemetry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, TypeVar

from asyncdal._errors import AsyncDALError
from asyncdal._session import DALSession
from asyncdal._stats import Counters

__all__ = ["GatherTrace", "Observer", "Telemetry", "TransactionTrace"]

T = TypeVar("T")
_Read = Callable[[DALSession], Awaitable[Any]]
#: Called by run_transaction before it retries: (failed attempt, SQLSTATE, backoff seconds).
OnRetry = Callable[[int, str, float], None]


class GatherTrace(Protocol):
    """The telemetry of one ``db.gather`` call."""

    def read(self, index: int, queued: float) -> AbstractContextManager[None]:
        """Around one read's run; ``queued`` is the seconds it waited for its turn."""


class TransactionTrace(Protocol):
    """The telemetry of one ``db.transaction`` call."""

    def retry(self, attempt: int, sqlstate: str, delay: float) -> None:
        """Attempt ``attempt`` failed with ``sqlstate``; the next one starts after ``delay``."""


class Telemetry(Protocol):
    """What a telemetry backend (``asyncdal.otel``) provides to the layer."""

    def gather(self, reads: int, consistent: bool) -> AbstractContextManager[GatherTrace]:
        """Around a whole ``db.gather`` call of ``reads`` reads."""

    def transaction(
        self, isolation: str | None, retries: int | None
    ) -> AbstractContextManager[TransactionTrace]:
        """Around a whole ``db.transaction`` call, all its attempts included."""


class Observer:
    """The counters of one :class:`Database`, and its telemetry when someone installed it."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.telemetry: Telemetry | None = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Count the layer errors that leave the block, by class."""
        try:
            yield
        except AsyncDALError as exc:
            self.counters.error(exc)
            raise

    @contextmanager
    def gather(self, reads: Sequence[_Read], consistent: bool) -> Iterator[list[_Read]]:
        """Around ``db.gather``: yields the reads, wrapped to time their queueing."""
        counters = self.counters
        counters.gathers += 1
        counters.gather_reads += len(reads)
        counters.gather_reads_queued += len(reads)
        pending = [len(reads)]  # reads not started yet: still queued when the call ends
        telemetry = self.telemetry
        try:
            with self.errors():
                if telemetry is None:
                    yield _timed_all(reads, counters, pending, None)
                else:
                    with telemetry.gather(len(reads), consistent) as trace:
                        yield _timed_all(reads, counters, pending, trace)
        finally:
            counters.gather_reads_queued -= pending[0]  # cancelled or failed before their turn

    @contextmanager
    def transaction(self, isolation: str | None, retries: int | None) -> Iterator[OnRetry]:
        """Around ``db.transaction``: yields the callback ``run_transaction`` calls on retry."""
        counters = self.counters
        counters.transactions += 1
        telemetry = self.telemetry
        with self.errors():
            if telemetry is None:
                yield _count_retry(counters, None)
            else:
                with telemetry.transaction(isolation, retries) as trace:
                    yield _count_retry(counters, trace)


def _timed_all(
    reads: Sequence[_Read], counters: Counters, pending: list[int], trace: GatherTrace | None
) -> list[_Read]:
    # What is not callable (a coroutine passed by mistake) stays as it is, for gather's own
    # check to refuse with its message.
    return [
        _timed(read, counters, pending, trace, index) if callable(read) else read
        for index, read in enumerate(reads)
    ]


def _timed(
    read: _Read, counters: Counters, pending: list[int], trace: GatherTrace | None, index: int
) -> _Read:
    enqueued = time.perf_counter()

    async def timed(session: DALSession) -> Any:
        queued = time.perf_counter() - enqueued
        pending[0] -= 1
        counters.gather_reads_queued -= 1
        counters.gather_queue_wait_seconds += queued
        if trace is None:
            return await read(session)
        with trace.read(index, queued):
            return await read(session)

    return timed


def _count_retry(counters: Counters, trace: TransactionTrace | None) -> OnRetry:
    def on_retry(attempt: int, sqlstate: str, delay: float) -> None:
        counters.transaction_retries += 1
        if trace is not None:
            trace.retry(attempt, sqlstate, delay)

    return on_retry
