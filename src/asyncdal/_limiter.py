"""How many connections the fan-outs of one ``Database`` may hold: a multi-slot limiter."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots", "gather_slots"]


def gather_slots(capacity: int) -> int:
    """How many connections reads of ``db.gather`` may hold at once, all calls together.

    A fifth of the pool's capacity (at least one connection) stays free for the other users
    of the same ``Database``, so a large fan-out never makes them wait out the pool timeout.
    """
    return max(1, capacity - max(1, capacity // 5))


class Slots:
    """A first-come, first-served counting limiter that can take several slots at once.

    ``asyncio.Semaphore`` takes one slot per call; a consistent fan-out needs all of its
    connections together, or two of them could each hold part and wait forever for the rest.
    """

    def __init__(self, total: int) -> None:
        """A limiter of ``total`` slots, all free."""
        self.total = total
        self._free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, count: int) -> None:
        """Take ``count`` slots together, waiting for them first come, first served."""
        if not self._waiters and self._free >= count:
            self._free -= count
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (count, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(count)  # granted just as we were cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._wake()  # we may have been the head blocking smaller requests
            raise

    def release(self, count: int) -> None:
        """Give back ``count`` slots and wake the waiters they now satisfy."""
        self._free += count
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._free:
            count, waiter = self._waiters.popleft()
            if not waiter.done():
                self._free -= count
                waiter.set_result(None)
