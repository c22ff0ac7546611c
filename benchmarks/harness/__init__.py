"""The benchmarks B1..B5, run by ``python benchmarks/run.py`` from a checkout.

Every contender runs in the same process run, on the same data, with the same pool settings
(:data:`POOL_SIZE`, see :func:`harness.context.settings_caption`), in interleaved rounds; the
results are medians with their spread and the ratios between contenders, printed as tables
and written as JSON (B5 also as a chart beside the JSON).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import text

from asyncdal import ConfigurationError, Database
from harness.context import POOL_SIZE, PROFILES, BenchContext, Profile, open_context
from harness.harness import Benchmark, Outcome, run_interleaved
from harness.network import network_chart, network_outcomes
from harness.report import machine, outcome_table, write_json

__all__ = ["BENCHMARKS", "NETWORK", "POOL_SIZE", "run_benchmarks"]


def _fanout(ctx: BenchContext) -> Benchmark:
    from harness.fanout import fanout_benchmark

    return fanout_benchmark(ctx)


def _dashboard(ctx: BenchContext) -> Benchmark:
    from harness.dashboard import dashboard_benchmark

    return dashboard_benchmark(ctx)


def _lookups(ctx: BenchContext) -> Benchmark:
    from harness.lookups import lookups_benchmark

    return lookups_benchmark(ctx)


def _bulk(ctx: BenchContext) -> Benchmark:
    from harness.bulk import bulk_benchmark

    return bulk_benchmark(ctx)


#: Benchmark id -> how to build it.
BENCHMARKS: dict[str, Callable[[BenchContext], Benchmark]] = {
    "B1": _fanout,
    "B2": _dashboard,
    "B3": _lookups,
    "B4": _bulk,
}
#: Benchmarks that open their own clients (B5: through the delaying proxy, per round trip).
NETWORK = "B5"


async def _prepare(url: str, console: Console, scale: float) -> tuple[dict[str, int], str]:
    """Migrate and seed (when empty) the benchmark database; its row counts and version."""
    from asyncdal.cli._demo import migrate_and_seed
    from asyncdal.testing import table_counts

    async with Database.from_url(url, application_name="asyncdal-bench") as db:
        await migrate_and_seed(db, console, scale=scale)
        async with db.session() as session:
            server = str((await session.execute(text("SHOW server_version"))).scalar_one())
        return await table_counts(db), server


async def run_benchmarks(
    url: str,
    console: Console,
    *,
    profile: str = "full",
    repeats: int | None = None,
    only: list[str] | None = None,
    output: Path | None = None,
) -> list[Outcome]:
    """Run the benchmarks of ``profile`` on ``url`` (migrated and seeded first if empty)."""
    sizes = PROFILES[profile]
    rounds = repeats or sizes.repeats
    wanted = [name.upper() for name in (only or [*BENCHMARKS, NETWORK])]
    unknown = sorted(set(wanted) - BENCHMARKS.keys() - {NETWORK})
    if unknown:
        raise ConfigurationError(f"unknown benchmark {', '.join(unknown)}: choose from B1..B5")
    started = time.perf_counter()
    counts, server = await _prepare(url, console, sizes.scale)
    load = os.getloadavg()
    console.print(
        f"Profile {profile!r}: {rounds} interleaved rounds, pool of {POOL_SIZE} connections for "
        f"every contender; data: {counts['users']:,} users, {counts['posts']:,} posts, "
        f"{counts['orders']:,} orders. Load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}."
    )
    outcomes: list[Outcome] = []
    async with open_context(url, sizes) as ctx:
        for name in wanted:
            if name == NETWORK:
                continue
            bench = BENCHMARKS[name](ctx)
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(
                    f"{name}: {bench.title}", total=rounds * len(bench.contenders)
                )
                outcome = await run_interleaved(
                    bench,
                    rounds,
                    lambda: progress.advance(task),  # noqa: B023
                )
            outcomes.append(outcome)
            console.print(outcome_table(outcome))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # Never into the caller's working directory: --output, or a temp dir that is kept.
    path = output or Path(tempfile.mkdtemp(prefix="asyncdal-bench-")) / f"{stamp}-{profile}.json"
    if NETWORK in wanted:
        network = await _network(url, console, sizes, rounds)
        outcomes += network
        chart = network_chart(network, path.with_name(f"{path.stem}-b5.png"))
        console.print(f"B5 chart written to {chart}")
    after = os.getloadavg()
    info = {
        "machine": machine(server),
        "dataset": counts,
        "pool_size": POOL_SIZE,
        "load_average": {"start": list(load), "end": list(after)},
    }
    write_json(path, profile=profile, repeats=rounds, info=info, outcomes=outcomes)
    console.print(f"Results written to {path} ({time.perf_counter() - started:.0f} s in all).")
    return outcomes


async def _network(url: str, console: Console, sizes: Profile, rounds: int) -> list[Outcome]:
    """B5, a level per round trip, each level's table printed as it ends."""
    outcomes: list[Outcome] = []
    with Progress(console=console, transient=True) as progress:

        def level(bench: Benchmark) -> Callable[[], None]:
            task = progress.add_task(
                f"{bench.id}: {bench.title}", total=rounds * len(bench.contenders)
            )
            return lambda: progress.advance(task)

        for outcome in await network_outcomes(url, sizes, rounds, level):
            outcomes.append(outcome)
    for outcome in outcomes:
        console.print(outcome_table(outcome))
    return outcomes
