"""B5: the B3 read contenders over a network with a round trip of 0 to 2 ms.

Every level runs its clients through the delaying proxy of :mod:`harness.delay` (a separate
process, also at +0 ms, so the proxy's own cost is in every level alike), in interleaved
rounds. A few tasks, each reading one row after another (as a request handler does), keep
the pool from being the limit: what is measured is how many round trips a read waits for.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from harness.context import BenchContext, Profile, open_context, settings_caption
from harness.delay import delayed_url
from harness.harness import Benchmark, Contender, Outcome, Sample, run_interleaved
from harness.lookups import (
    COALESCED,
    COMMITTED_PER_LOOKUP,
    PLAIN_READ,
    RAW,
    READ_PATH,
    coalesced,
    layer_committed,
    layer_read,
    plain_read,
    raw,
)

__all__ = ["TARGET_RTT", "network_chart", "network_outcomes"]

#: The round trip (seconds) at which the target is judged.
TARGET_RTT = 0.001

_CONTENDERS = (
    (READ_PATH, layer_read, "1 round trip"),
    (COALESCED, coalesced, "1 query per batch"),
    (COMMITTED_PER_LOOKUP, layer_committed, "BEGIN, SELECT, COMMIT: 3"),
    (PLAIN_READ, plain_read, "BEGIN, SELECT, ROLLBACK: 3"),
    (RAW, raw, "fetchrow, reset on release"),
)


async def _measured_rtt(ctx: BenchContext, samples: int = 50) -> float:
    """Median wall time of ``SELECT 1`` on one raw asyncpg connection (seconds)."""
    times = []
    async with ctx.pool.acquire() as conn:
        for _ in range(samples):
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _benchmark(ctx: BenchContext, delay: float, measured: float, base: float) -> Benchmark:
    tasks, per_task = ctx.profile.net_tasks, ctx.profile.net_reads
    rng = random.Random(5)
    work = [rng.choices(ctx.user_ids, k=per_task) for _ in range(tasks)]
    rtt = 2 * delay

    def run(task: Callable[[BenchContext, list[int]], Awaitable[None]]) -> Sample:
        async def sample() -> int:
            await asyncio.gather(*(task(ctx, ids) for ids in work))
            return tasks * per_task

        return sample

    def judge(outcome: Outcome) -> None:
        plain_tp = outcome.by_name(PLAIN_READ).throughput
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / plain session per read"] = stats.throughput / plain_tp
        if abs(rtt - TARGET_RTT) < 1e-9:
            ratio = outcome.by_name(READ_PATH).throughput / plain_tp
            outcome.target = (
                f"at {TARGET_RTT * 1e3:g} ms round trip: db.read() + repository.get >= 2x "
                "plain SQLAlchemy's session per read"
            )
            outcome.target_met = ratio >= 2.0

    return Benchmark(
        f"B5 {rtt * 1e3:g} ms",
        f"{tasks} tasks x {per_task} reads by primary key, +{rtt * 1e3:g} ms round trip "
        f"(measured: SELECT 1 took {measured * 1e3:.2f} ms, +{(measured - base) * 1e3:.2f} ms)",
        "reads",
        [Contender(name, run(task), note) for name, task, note in _CONTENDERS],
        judge,
        notes=(
            f"Through the delaying proxy (a process of its own) adding {delay * 1e3:g} ms each "
            f"way; SELECT 1 on a raw asyncpg connection took {measured * 1e3:.2f} ms (median), "
            f"{base * 1e3:.2f} ms through the proxy adding nothing.",
            settings_caption(ctx.db),
        ),
    )


async def network_outcomes(
    url: str,
    profile: Profile,
    rounds: int,
    on_level: Callable[[Benchmark], Callable[[], None] | None] | None = None,
) -> list[Outcome]:
    """B5 at every delay of ``profile``: one outcome per round trip, in increasing order.

    The first (smallest) delay's SELECT 1 is the base the others' added round trip is
    measured from (every profile starts at +0 ms).
    """
    outcomes = []
    base: float | None = None
    for delay in sorted(profile.delays):
        async with delayed_url(url, delay) as proxied, open_context(proxied, profile) as ctx:
            measured = await _measured_rtt(ctx)
            base = measured if base is None else base
            bench = _benchmark(ctx, delay, measured, base)
            tick = on_level(bench) if on_level is not None else None
            outcome = await run_interleaved(bench, rounds, tick)
            outcome.measured["round_trip_s"] = measured
            outcome.measured["added_round_trip_s"] = 2 * delay
            outcome.measured["measured_added_round_trip_s"] = measured - base
            outcomes.append(outcome)
    return outcomes


def network_chart(outcomes: list[Outcome], path: Path) -> Path:
    """Reads per second against the added round trip, median and min..max, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [o.measured["added_round_trip_s"] * 1e3 for o in outcomes]
    fig, (ax, rel) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=100)
    for stats in outcomes[0].stats:
        name = stats.name
        series = [o.by_name(name) for o in outcomes]
        plain = [o.by_name(PLAIN_READ).throughput for o in outcomes]
        line = ax.plot(xs, [s.throughput for s in series], marker="o", label=name)
        lows = [s.ops / max(s.seconds) for s in series]
        highs = [s.ops / min(s.seconds) for s in series]
        ax.fill_between(xs, lows, highs, alpha=0.12, color=line[0].get_color())
        ratios = [s.throughput / p for s, p in zip(series, plain, strict=True)]
        rel.plot(xs, ratios, marker="o", color=line[0].get_color())
    ax.set_yscale("log")
    ax.set_xlabel("round trip added by the proxy (ms)")
    ax.set_ylabel("reads per second (median; shaded: min..max)")
    ax.set_title(outcomes[0].title.split(",")[0], fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    rel.axhline(2.0, color="grey", linestyle="--", linewidth=1)
    rel.set_xlabel("round trip added by the proxy (ms)")
    rel.set_ylabel("throughput / plain session per read")
    rel.set_title("ratio to plain SQLAlchemy (dashed: the 2x target)", fontsize=10)
    rel.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
