"""What enabling OpenTelemetry costs, on the B1 and B3 workloads (README "Observability").

    python benchmarks/otel_cost.py [--rounds 9] [--output docs/results/otel-cost.json]

Three databases on one server, same pool size: not instrumented, the layer's spans only
(``instrument(db, statements=False)``), and everything (plus the SQLAlchemy instrumentation's
statement spans). Spans go through the SDK's BatchSpanProcessor to an exporter that drops
them, so the cost measured is creating and queueing spans, not shipping them. Rounds
interleave the three; medians with min..max, and each ratio against "off". Wall time on a
shared machine is noisy; the client's CPU per operation (``time.process_time``: this process
only, the server excluded) is what tracing adds, and is steadier. With no DATABASE_URL a
throwaway PostgreSQL server is started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import func, select, text

from asyncdal import DALSession, Database, upgrade
from asyncdal.accounts import UserRepository
from asyncdal.otel import instrument
from asyncdal.testing import EmbeddedPostgres

POOL_SIZE = 10
USERS = 10_000
FANOUT, SLEEP = 8, 0.05  # B1
TASKS, LOOKUPS = 64, 40  # B3


class _Drop(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


async def _seed(db: Database) -> list[int]:
    async with db.session() as s:
        await s.execute(
            text(
                "INSERT INTO users (username, email) SELECT 'otel' || g, 'otel' || g || "
                "'@example.org' FROM generate_series(1, :n) AS g ON CONFLICT DO NOTHING"
            ),
            {"n": USERS},
        )
        ids = (await s.scalars(select(text("id")).select_from(text("users")))).all()
    return [int(i) for i in ids]


def _workloads(ids: list[int]) -> dict[str, Callable[[Database], Awaitable[int]]]:
    sleep = select(func.pg_sleep(SLEEP))
    rng = random.Random(6)
    work = [rng.choices(ids, k=LOOKUPS) for _ in range(TASKS)]

    async def sleep_read(s: DALSession) -> None:
        await s.execute(sleep)

    async def b1(db: Database) -> int:
        await db.gather(*[sleep_read] * FANOUT)
        return FANOUT

    async def b3_per_lookup(db: Database) -> int:
        async def task(user_ids: list[int]) -> None:
            for user_id in user_ids:
                async with db.session() as s:
                    await UserRepository(s).get(user_id)

        await asyncio.gather(*(task(w) for w in work))
        return TASKS * LOOKUPS

    async def b3_per_task(db: Database) -> int:
        async def task(user_ids: list[int]) -> None:
            async with db.session() as s:
                repo = UserRepository(s)
                for user_id in user_ids:
                    await repo.get(user_id)

        await asyncio.gather(*(task(w) for w in work))
        return TASKS * LOOKUPS

    return {
        f"B1 db.gather of {FANOUT} x pg_sleep({SLEEP})": b1,
        f"B3 {TASKS} tasks x {LOOKUPS} repository.get, session per lookup": b3_per_lookup,
        f"B3 {TASKS} tasks x {LOOKUPS} repository.get, session per task": b3_per_task,
    }


async def _measure(url: str, rounds: int) -> dict[str, Any]:
    modes = ("off", "layer spans", "layer + statement spans")
    dbs = {mode: Database.from_url(url, pool_size=POOL_SIZE) for mode in modes}
    exporter = _Drop()
    with ExitStack() as stack:
        for mode, statements in (("layer spans", False), ("layer + statement spans", True)):
            tracer_provider = TracerProvider()
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
            stack.callback(tracer_provider.shutdown)
            done = instrument(
                dbs[mode],
                tracer_provider=tracer_provider,
                meter_provider=MeterProvider(),
                statements=statements,
            )
            stack.callback(done.uninstrument)
        await upgrade(dbs["off"])
        workloads = _workloads(await _seed(dbs["off"]))
        results: dict[str, Any] = {}
        try:
            for name, run in workloads.items():
                for db in dbs.values():
                    await run(db)  # warm: connections open, statements cached
                times: dict[str, list[float]] = {mode: [] for mode in modes}
                cpu: dict[str, list[float]] = {mode: [] for mode in modes}
                ops = 0
                for _ in range(rounds):
                    for mode in modes:
                        started, cpu_started = time.perf_counter(), time.process_time()
                        ops = await run(dbs[mode])
                        times[mode].append(time.perf_counter() - started)
                        cpu[mode].append(time.process_time() - cpu_started)
                base = statistics.median(times["off"])
                cpu_base = statistics.median(cpu["off"])
                results[name] = {
                    mode: {
                        "median_ms": statistics.median(t) * 1000,
                        "min_ms": min(t) * 1000,
                        "max_ms": max(t) * 1000,
                        "ratio_to_off": statistics.median(t) / base,
                        "cpu_ms_per_op": statistics.median(cpu[mode]) * 1000 / ops,
                        "cpu_ratio_to_off": statistics.median(cpu[mode]) / cpu_base,
                    }
                    for mode, t in times.items()
                }
        finally:
            for db in dbs.values():
                await db.dispose()
    results["spans_exported"] = exporter.exported
    return results


def _print(results: dict[str, Any]) -> None:
    for name, by_mode in results.items():
        if not isinstance(by_mode, dict):
            continue
        print(f"\n**{name}**\n")
        print("| tracing | wall median | min..max | wall vs off | client CPU per op | CPU vs off |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode, r in by_mode.items():
            print(
                f"| {mode} | {r['median_ms']:,.1f} ms | {r['min_ms']:,.1f}..{r['max_ms']:,.1f} "
                f"| {r['ratio_to_off']:.2f}x | {r['cpu_ms_per_op']:.3f} ms "
                f"| {r['cpu_ratio_to_off']:.2f}x |"
            )


async def _run(url: str | None, rounds: int) -> dict[str, Any]:
    with ExitStack() as stack:
        if not url:
            url = stack.enter_context(EmbeddedPostgres()).url
        return await _measure(url, rounds)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, measure, print a Markdown table, optionally save JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = asyncio.run(_run(os.environ.get("DATABASE_URL"), args.rounds))
    results["machine"] = f"{os.cpu_count()} cores, {platform.platform()}"
    _print(results)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
