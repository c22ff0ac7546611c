"""Interleaved repeats, statistics and ratios: what every benchmark shares.

Each contender is a coroutine function that performs one *sample* of work and returns how many
operations it did. A round runs every contender once, in an order rotated from round to round,
so drift on a shared machine (other processes, caches, autovacuum) hits all contenders alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Benchmark", "Contender", "Outcome", "Sample", "Stats", "run_interleaved"]

#: Does one sample of work; returns the operations done, or (operations, seconds) when it timed
#: only part of itself (e.g. not the set-up and clean-up around a bulk insert).
Sample = Callable[[], Awaitable[int | tuple[int, float]]]


@dataclass(frozen=True)
class Contender:
    """One way of doing the benchmark's work; ``sample()`` does it once (see ``Sample``)."""

    name: str
    sample: Sample
    note: str = ""


@dataclass(frozen=True)
class Stats:
    """Wall times of one contender's samples (seconds) and what follows from them."""

    name: str
    seconds: list[float]
    ops: int
    note: str = ""

    @property
    def median(self) -> float:
        """Median wall time of a sample."""
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        """(lowest, highest) wall time of a sample."""
        return min(self.seconds), max(self.seconds)

    @property
    def throughput(self) -> float:
        """Operations per second at the median."""
        return self.ops / self.median

    def as_json(self) -> dict[str, Any]:
        """The contender's numbers for the JSON results."""
        low, high = self.spread
        return {
            "name": self.name,
            "note": self.note,
            "ops_per_sample": self.ops,
            "median_s": self.median,
            "min_s": low,
            "max_s": high,
            "throughput_per_s": self.throughput,
            "samples_s": self.seconds,
        }


@dataclass
class Outcome:
    """A benchmark's results: each contender's stats, the ratios and the target check."""

    id: str
    title: str
    unit: str
    stats: list[Stats]
    #: name -> (description, value): e.g. "db.gather / slowest single read".
    ratios: dict[str, float] = field(default_factory=dict)
    target: str = ""
    target_met: bool | None = None
    notes: list[str] = field(default_factory=list)
    #: Other measurements of the run (B5: the round trip the proxy adds, and the measured one).
    measured: dict[str, float] = field(default_factory=dict)

    def by_name(self, name: str) -> Stats:
        """The stats of the contender called ``name``."""
        for stats in self.stats:
            if stats.name == name:
                return stats
        raise KeyError(name)

    def as_json(self) -> dict[str, Any]:
        """The whole benchmark for the JSON results."""
        return {
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "contenders": [s.as_json() for s in self.stats],
            "ratios": self.ratios,
            "target": self.target,
            "target_met": self.target_met,
            "notes": self.notes,
            "measured": self.measured,
        }


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its contenders and how to judge them."""

    id: str
    title: str
    unit: str
    contenders: Sequence[Contender]
    judge: Callable[[Outcome], None]
    notes: tuple[str, ...] = ()


async def run_interleaved(
    bench: Benchmark, repeats: int, on_sample: Callable[[], None] | None = None
) -> Outcome:
    """Warm every contender up once, then run ``repeats`` rotated rounds and judge."""
    contenders = list(bench.contenders)
    for contender in contenders:
        await contender.sample()  # warm-up: connections opened, statements prepared
    seconds: dict[str, list[float]] = {c.name: [] for c in contenders}
    ops: dict[str, int] = {}
    for round_no in range(repeats):
        shift = round_no % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            started = time.perf_counter()
            done = await contender.sample()
            elapsed = time.perf_counter() - started
            if isinstance(done, tuple):
                done, elapsed = done
            seconds[contender.name].append(elapsed)
            ops[contender.name] = done
            if on_sample is not None:
                on_sample()
    outcome = Outcome(
        bench.id,
        bench.title,
        bench.unit,
        [Stats(c.name, seconds[c.name], ops[c.name], c.note) for c in contenders],
        notes=list(bench.notes),
    )
    bench.judge(outcome)
    return outcome
