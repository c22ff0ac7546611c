"""A soak: minutes of mixed load with faults, watching that nothing grows.

Worker tasks run, at random, the layer's entry points against one database: ``db.session()``
units of work, ``db.transaction`` orders, ``db.gather`` fan-outs, coalesced ``db.get``,
``add_many`` (INSERT and COPY), and ``Repository.stream`` in a ``db.session()``. About 1% of the
operations carry hostile input (an id past int64, a NUL byte, an oversize string, NaN, a
string where an integer belongs), which must be refused with ``InvalidQueryError``. Every
``--kill-every`` seconds one of the app's backends is killed (``pg_terminate_backend``).

Each interval (a minute by default) prints one line: the process's memory at its end, the
median and the peak of samples taken every second of its open file descriptors, of the pools'
checked-out connections, of the server's backends of the app and of those backends no pool holds
(a killed one still exiting, a connect under way), and the p50/p99 latency of the operations in
that interval, with their counts and errors by class.

Memory is given twice: the RSS, and what of it is in use (``in_use_mb``: the RSS less the free
memory glibc's allocator keeps in its heap for reuse, from ``mallinfo2``). A leak grows the
second. The RSS alone also grows with the allocator's retained free memory: glibc raises its
mmap threshold each time a large block is freed, so later large buffers (a COPY's rows) come
from the heap, whose free holes it keeps (run with ``MALLOC_MMAP_THRESHOLD_=131072`` and the
RSS stays flat too).

After the warm-up (``--warmup`` intervals), the memory in use (the RSS where ``mallinfo2`` is
missing) and the medians of open fds and server backends must stay within 5% (plus one for the
small counts) of their first value after it; a leak moves the median, a backend killed a
moment ago only the peak. Else the exit status is 1, as it is for any error other than the
expected ones (the hostile inputs' ``InvalidQueryError``, a sold-out order, and
``DatabaseUnavailableError`` of a unit of work whose backend was killed).

    python benchmarks/soak.py                 # 10 minutes on an embedded server
    python benchmarks/soak.py --minutes 1 --interval 10 --kill-every 5
    python benchmarks/soak.py --minutes 8 --tracemalloc 10   # where the memory went

``--tracemalloc FRAMES`` traces Python's allocations (slower, and more memory): each line then
also gives the traced total, and at the end the allocation sites that grew most between the
end of the warm-up and the last interval are printed, with their tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import json
import math
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import func, select, text

from asyncdal import (
    Database,
    DatabaseUnavailableError,
    InvalidQueryError,
    upgrade,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import InsufficientStockError, OrderRepository, Product, ProductRepository
from asyncdal.testing import EmbeddedPostgres

APP = "asyncdal-soak"
PRODUCTS = 50
USERS = 200
TOLERANCE = 0.05


@dataclass
class Interval:
    """What one interval of the load saw."""

    latencies: list[float] = field(default_factory=list)
    #: The samples taken every second: open fds, checked out, server backends, unaccounted.
    seen: dict[str, list[int]] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)


class Soak:
    """The load, the killer and the sampler around one :class:`Database`."""

    def __init__(self, db: Database, admin: Database, hostile: float) -> None:
        self.db = db
        self.admin = admin
        self.hostile = hostile
        self.now = Interval()
        self.names = 0
        self.product_ids: list[int] = []
        self.user_ids: list[int] = []
        self.kills = 0

    def name(self) -> str:
        self.names += 1
        return f"s{os.getpid()}x{self.names}"

    async def seed(self) -> None:
        async with self.db.session() as s:
            await s.execute(
                text("TRUNCATE order_items, orders, products, users RESTART IDENTITY CASCADE")
            )
        async with self.db.session() as s:
            products = [
                Product(sku=f"SOAK-{i}", name="soak", price=Decimal("2.50"), stock=10**9)
                for i in range(PRODUCTS)
            ]
            users = [User(username=f"seed{i}", email=f"seed{i}@example.org") for i in range(USERS)]
            s.add_all([*products, *users])
            await s.flush()
            self.product_ids = [p.id for p in products]
            self.user_ids = [u.id for u in users]

    # The operations. Each returns nothing; errors are classified by run().

    async def session(self) -> None:
        name = self.name()
        async with self.db.session() as s:
            user = await UserRepository(s).create(username=name, email=f"{name}@example.org")
            await s.scalar(select(func.count()).select_from(User).where(User.id <= user.id))

    async def transaction(self) -> None:
        user, product = random.choice(self.user_ids), random.choice(self.product_ids)
        await self.db.transaction(lambda s: OrderRepository(s).place(user, {product: 1}))

    async def gather(self) -> None:
        ids = random.sample(self.product_ids, 3)
        await self.db.gather(
            *(lambda s, i=i: ProductRepository(s).get(i) for i in ids),
            lambda s: UserRepository(s).count(),
        )

    async def get(self) -> None:
        await asyncio.gather(
            *(self.db.get(Product, random.choice(self.product_ids)) for _ in range(5))
        )

    async def add_many(self) -> None:
        size = random.choice([5, 1100])  # below and above the COPY threshold
        rows = [{"username": (n := self.name()), "email": f"{n}@example.org"} for _ in range(size)]
        async with self.db.session() as s:
            await UserRepository(s).add_many(rows)

    async def stream(self) -> None:
        # A server-side cursor needs a transaction: db.session() (the read pool has none).
        async with self.db.session() as s:
            repository = ProductRepository(s)
            async with aclosing(repository.stream({"stock__gt": 0})) as rows:
                async for _ in rows:
                    pass

    async def hostile_input(self) -> None:
        """One of the unsendable or refused values; InvalidQueryError is the right answer."""
        choice = random.randrange(6)
        if choice == 0:
            await self.db.get(Product, 2**63)
        elif choice == 1:
            async with self.db.session() as s:
                await UserRepository(s).create(username="nul\x00byte", email="n@example.org")
        elif choice == 2:
            async with self.db.session() as s:
                await UserRepository(s).create(username="x" * 100_000, email="o@example.org")
        elif choice == 3:
            async with self.db.session() as s:
                await ProductRepository(s).create(
                    sku=self.name(), name="nan", price=Decimal("NaN"), stock=1
                )
        elif choice == 4:
            async with self.db.read() as s:
                await s.scalar(select(Product.id).where(Product.id == 2**63))
        else:
            await self.db.gather(lambda s: UserRepository(s).list(where={"id": "one"}))

    async def run(self, kind: str, op: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        now = self.now
        try:
            await op()
        except InvalidQueryError:
            now.errors["InvalidQueryError"] += 1
            if kind != "hostile":
                now.unexpected[f"{kind}: InvalidQueryError"] += 1
        except InsufficientStockError:
            now.errors["InsufficientStockError"] += 1
        except DatabaseUnavailableError:
            now.errors["DatabaseUnavailableError"] += 1  # a unit of work whose backend died
        except Exception as exc:
            now.errors[type(exc).__name__] += 1
            now.unexpected[f"{kind}: {type(exc).__name__}: {str(exc)[:120]}"] += 1
        else:
            if kind == "hostile":
                now.unexpected["hostile input accepted"] += 1
        now.latencies.append(time.perf_counter() - started)
        now.ops[kind] += 1

    async def worker(self, stop: asyncio.Event) -> None:
        ops: list[tuple[str, Callable[[], Awaitable[None]], int]] = [
            ("session", self.session, 20),
            ("transaction", self.transaction, 20),
            ("gather", self.gather, 20),
            ("get", self.get, 25),
            ("add_many", self.add_many, 3),
            ("stream", self.stream, 12),
        ]
        weights = [w for _, _, w in ops]
        while not stop.is_set():
            if random.random() < self.hostile:
                await self.run("hostile", self.hostile_input)
                continue
            kind, op, _ = random.choices(ops, weights)[0]
            await self.run(kind, op)

    async def killer(self, stop: asyncio.Event, every: float) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
                return
            except TimeoutError:
                pass
            async with self.admin.session() as s:
                pids = (
                    await s.scalars(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE application_name = :app "
                            "AND pid <> pg_backend_pid()"
                        ).bindparams(app=APP)
                    )
                ).all()
                if pids:
                    await s.execute(select(func.pg_terminate_backend(random.choice(pids))))
                    self.kills += 1

    async def watch(self, stop: asyncio.Event) -> None:
        """Every second: open fds, checked-out connections, backends, and backends no pool holds."""
        while not stop.is_set():
            backends = await self.backends()
            stats = self.db.stats()
            for key, value in (
                ("open_fds", len(os.listdir("/proc/self/fd"))),
                ("checked_out", stats.checked_out),
                ("server_backends", backends),
                ("unaccounted", backends - stats.connections),
            ):
                self.now.seen.setdefault(key, []).append(value)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def settle(self, seconds: float = 10.0) -> int:
        """After the load: backends of the app that no pool holds, once they had (bounded)
        time to exit. A connection the layer lost track of stays here for good."""
        deadline = time.monotonic() + seconds
        while True:
            left = await self.backends() - self.db.stats().connections
            if left <= 0 or time.monotonic() > deadline:
                return max(left, 0)
            await asyncio.sleep(0.2)

    async def backends(self) -> int:
        async with self.admin.session() as s:
            count = await s.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
                ).bindparams(app=APP)
            )
        return int(count or 0)

    async def sample(self, index: int) -> dict[str, Any]:
        interval, self.now = self.now, Interval()
        gc.collect()
        lat = sorted(interval.latencies) or [math.nan]
        return {
            "interval": index,
            **_memory(),
            **(
                {"traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1)}
                if tracemalloc.is_tracing()
                else {}
            ),
            **_median_and_peak(interval.seen),
            "ops": sum(interval.ops.values()),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
            "kills": self.kills,
            "errors": dict(interval.errors),
            "unexpected": dict(interval.unexpected),
        }


def _median_and_peak(seen: dict[str, list[int]]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for key, values in seen.items():
        figures[key] = statistics.median(values)
        figures[f"{key}_peak"] = max(values)
    return figures


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's ``mallinfo2`` (2.33+), or None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if function is None:
        return None
    function.restype = _MallInfo2
    return cast(Callable[[], _MallInfo2], function)


_MALLINFO2 = _mallinfo2()


def _memory() -> dict[str, float]:
    """The RSS, and (with glibc) the allocator's retained free heap and the RSS less it."""
    rss = _rss_bytes()
    figures = {"rss_mb": round(rss / 2**20, 1)}
    if _MALLINFO2 is not None:
        free = _MALLINFO2().fordblks
        figures["heap_free_mb"] = round(free / 2**20, 1)
        figures["in_use_mb"] = round((rss - free) / 2**20, 1)
    return figures


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> None:
    """The allocation sites that grew most from ``before`` to ``after``, with tracebacks."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "traceback")
    growth = sum(d.size_diff for d in diff) / 2**20
    print(f"traced growth after the warm-up: {growth:+.2f} MB; the largest:", file=sys.stderr)
    for stat in diff[:top]:
        print(f"{stat.size_diff / 2**10:+9.1f} KiB {stat.count_diff:+7} blocks", file=sys.stderr)
        for line in stat.traceback.format(most_recent_first=True)[:12]:
            print(f"        {line}", file=sys.stderr)


def flat(samples: list[dict[str, Any]], warmup: int) -> list[str]:
    """What grew after the warm-up: each resource against its first value after it.

    Memory is judged by what is in use (the RSS less the allocator's free heap) where that is
    known, else by the RSS; open fds and server backends by their per-interval medians.
    """
    after = samples[warmup:]
    if len(after) < 2:
        return []
    memory = "in_use_mb" if "in_use_mb" in after[0] else "rss_mb"
    grown = []
    for key in (memory, "open_fds", "server_backends"):
        base = after[0][key]
        # Small counts move by one as the pool opens and closes a connection.
        allowed = base * (1 + TOLERANCE) + (0 if key == memory else 1)
        worst = max(s[key] for s in after)
        if worst > allowed:
            grown.append(f"{key}: {base} -> {worst} (allowed {allowed:.1f})")
    return grown


async def soak(
    url: str, *, seconds: float, interval: float, kill_every: float, workers: int, warmup: int
) -> int:
    await upgrade(url)
    options: dict[str, Any] = {"pool_size": 10, "max_overflow": 5, "application_name": APP}
    async with (
        Database.from_url(url, **options) as db,
        Database.from_url(url, pool_size=1, max_overflow=0) as admin,
    ):
        load = Soak(db, admin, hostile=0.01)
        await load.seed()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(load.worker(stop)) for _ in range(workers)]
        tasks.append(asyncio.create_task(load.killer(stop, kill_every)))
        tasks.append(asyncio.create_task(load.watch(stop)))
        samples: list[dict[str, Any]] = []
        warm: tracemalloc.Snapshot | None = None
        started = time.monotonic()
        try:
            for index in range(1, max(1, round(seconds / interval)) + 1):
                await asyncio.sleep(max(0.0, started + index * interval - time.monotonic()))
                samples.append(await load.sample(index))
                print(json.dumps(samples[-1]), flush=True)
                if tracemalloc.is_tracing() and index == warmup:
                    warm = tracemalloc.take_snapshot()
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        if warm is not None:
            print_growth(warm, tracemalloc.take_snapshot(), top=25)
        unaccounted = await load.settle()
    grown = flat(samples, warmup)
    if unaccounted:
        grown.append(f"{unaccounted} backend(s) of the app that no pool holds, after the load")
    unexpected = sum((Counter(s["unexpected"]) for s in samples), Counter())
    print(" int   rss MB  in use  free   fds   out  backends  unacc   p50 ms   p99 ms     ops")
    for s in samples:
        print(
            f"{s['interval']:>3} {s['rss_mb']:>8} {s.get('in_use_mb', '-'):>7} "
            f"{s.get('heap_free_mb', '-'):>5} {s['open_fds']:>5g} {s['checked_out_peak']:>5} "
            f"{s['server_backends']:>4g}/{s['server_backends_peak']:<4} "
            f"{s['unaccounted']:>2g}/{s['unaccounted_peak']:<3} "
            f"{s['p50_ms']:>8} {s['p99_ms']:>8} {s['ops']:>7}"
        )
    print("(fds, backends, unaccounted backends: median/peak of per-second samples; out: peak)")
    print(f"backends killed: {load.kills}; after warm-up ({warmup} interval(s)):", end=" ")
    print("flat" if not grown else "GREW: " + "; ".join(grown))
    if unexpected:
        print(f"unexpected errors: {dict(unexpected)}")
    return 1 if grown or unexpected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--kill-every", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=2, help="intervals before the check")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument(
        "--tracemalloc", type=int, default=0, metavar="FRAMES", help="trace allocations"
    )
    args = parser.parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)

    def run(url: str) -> int:
        return asyncio.run(
            soak(
                url,
                seconds=args.minutes * 60,
                interval=args.interval,
                kill_every=args.kill_every,
                workers=args.workers,
                warmup=args.warmup,
            )
        )

    if args.url:
        return run(args.url)
    with EmbeddedPostgres() as pg:
        return run(pg.url)


if __name__ == "__main__":
    sys.exit(main())
