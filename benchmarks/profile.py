"""cProfile of one lookup: the layer's against plain SQLAlchemy's, like for like.

    python benchmarks/profile.py                                  # to a new temp dir
    python benchmarks/profile.py --output-dir docs/results  # <stamp>-profile.md/.json

Two pairs, each side doing ``--lookups`` lookups one after another (one task, so the profile
is the lookup's own cost, no waiting on other tasks): a committed unit of work per lookup
(``db.session()`` + ``repository.get`` against ``async with sessionmaker.begin()`` +
``session.get``) and a read per lookup (``db.read()`` + ``repository.get`` against a plain
session closed without commit). The clients are the benchmarks' (:mod:`harness.context`: the
same pool settings and command_timeout). Written: Python calls and profiled time per lookup,
calls per lookup by package, and the top functions of each side (CPU time: the profiler's
timer is ``time.process_time``), as markdown and JSON.
With no DATABASE_URL a throwaway PostgreSQL server is started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# This file's name shadows the standard library's `profile`, which cProfile imports: import
# cProfile with benchmarks/ off sys.path, then put benchmarks/ first for `harness`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import cProfile  # noqa: E402
import pstats  # noqa: E402

sys.path.insert(0, str(_HERE))

from rich.console import Console  # noqa: E402

from asyncdal import Database  # noqa: E402
from asyncdal.testing import EmbeddedPostgres  # noqa: E402
from harness.context import PROFILES, BenchContext, open_context, settings_caption  # noqa: E402
from harness.lookups import (  # noqa: E402
    COMMITTED_PER_LOOKUP,
    PLAIN_COMMITTED_PER_LOOKUP,
    PLAIN_READ,
    READ_PATH,
    layer_committed,
    layer_read,
    plain_committed,
    plain_read,
)

Lookups = Callable[[BenchContext, list[int]], Awaitable[None]]
PAIRS: tuple[tuple[str, tuple[str, Lookups], tuple[str, Lookups]], ...] = (
    (
        "committed unit of work per lookup",
        (COMMITTED_PER_LOOKUP, layer_committed),
        (PLAIN_COMMITTED_PER_LOOKUP, plain_committed),
    ),
    ("read per lookup", (READ_PATH, layer_read), (PLAIN_READ, plain_read)),
)
TOP = 15


def _package(filename: str) -> str:
    """The package a profiled function belongs to, for the calls-by-package table."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    parts = Path(filename).parts
    for name in ("asyncdal", "sqlalchemy", "asyncpg"):
        if name in parts:
            return name
    if "asyncio" in parts:
        return "asyncio"
    return "other (stdlib, harness)"


def _short(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename.startswith("~"):
        return name
    parts = Path(filename).parts
    for anchor in ("asyncdal", "sqlalchemy", "asyncpg", "asyncio"):
        if anchor in parts:
            return f"{'/'.join(parts[parts.index(anchor) :])}:{line} {name}"
    return f"{Path(filename).name}:{line} {name}"


async def _profiled(ctx: BenchContext, lookups: Lookups, ids: list[int]) -> dict[str, Any]:
    """Run ``lookups`` over ``ids`` under cProfile; per-lookup numbers and the top functions."""
    # CPU time, not wall time: waiting for the server (epoll) is not the lookup's cost.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await lookups(ctx, ids)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    n = len(ids)
    by_package: Counter[str] = Counter()
    for func, (_, calls, _, _, _) in raw.items():
        by_package[_package(func[0])] += calls
    top = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:TOP]
    return {
        "lookups": n,
        "calls_per_lookup": stats.total_calls / n,  # type: ignore[attr-defined]
        "profiled_cpu_s_per_lookup": stats.total_tt / n,  # type: ignore[attr-defined]
        "calls_by_package": {k: v / n for k, v in by_package.most_common()},
        "top_by_own_time": [
            {
                "function": _short(func),
                "calls_per_lookup": calls / n,
                "own_cpu_us_per_lookup": tottime / n * 1e6,
                "cumulative_cpu_us_per_lookup": cumtime / n * 1e6,
            }
            for func, (_, calls, tottime, cumtime, _) in top
        ],
    }


async def _unprofiled(ctx: BenchContext, lookups: Lookups, ids: list[int]) -> tuple[float, float]:
    """Wall and CPU time per lookup without the profiler."""
    started, cpu = time.perf_counter(), time.process_time()
    await lookups(ctx, ids)
    return (time.perf_counter() - started) / len(ids), (time.process_time() - cpu) / len(ids)


async def measure(url: str, n: int, rounds: int) -> dict[str, Any]:
    """Profile every pair on ``url`` (migrated and seeded)."""
    from asyncdal.cli._demo import migrate_and_seed

    async with Database.from_url(url) as db:
        await migrate_and_seed(db, Console(quiet=True), scale=0.01)
    result: dict[str, Any] = {"pairs": []}
    async with open_context(url, PROFILES["smoke"]) as ctx:
        ids = [ctx.user_ids[i % len(ctx.user_ids)] for i in range(n)]
        result["settings"] = settings_caption(ctx.db)
        for title, (layer_name, layer), (plain_name, plain) in PAIRS:
            for _, lookups in ((layer_name, layer), (plain_name, plain)):
                await lookups(ctx, ids[:50])  # warm-up: connections, statement caches
            # Unprofiled wall time per lookup, the two sides interleaved.
            walls: dict[str, list[float]] = {layer_name: [], plain_name: []}
            cpus: dict[str, list[float]] = {layer_name: [], plain_name: []}
            for round_no in range(rounds):
                order = [(layer_name, layer), (plain_name, plain)]
                for name, lookups in order if round_no % 2 == 0 else order[::-1]:
                    wall, cpu = await _unprofiled(ctx, lookups, ids)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            sides = {}
            for name, lookups in ((layer_name, layer), (plain_name, plain)):
                sides[name] = await _profiled(ctx, lookups, ids)
                sides[name]["wall_s_per_lookup"] = sorted(walls[name])[len(walls[name]) // 2]
                sides[name]["wall_s_per_lookup_all"] = walls[name]
                sides[name]["cpu_s_per_lookup"] = sorted(cpus[name])[len(cpus[name]) // 2]
            result["pairs"].append(
                {"title": title, "layer": layer_name, "plain": plain_name, "sides": sides}
            )
    return result


def render(result: dict[str, Any]) -> str:
    """The profile comparison as markdown."""
    out = [
        "# One lookup under cProfile: the layer against plain SQLAlchemy "
        f"({result['measured_at']})",
        "",
        f"{result['lookups']} lookups one after another per side (one task); "
        f"{result['settings']}. Load average {result['load_average']}. Unprofiled CPU and wall "
        f"time: medians of {result['rounds']} interleaved rounds. Profiled times are the process's "
        "CPU time (cProfile with time.process_time: waiting for the server is not counted); "
        "they include cProfile's own overhead per call, so they grow with the calls.",
        "",
    ]
    for pair in result["pairs"]:
        layer, plain = pair["sides"][pair["layer"]], pair["sides"][pair["plain"]]
        out += [
            f"## {pair['title']}",
            "",
            "| per lookup | layer | plain SQLAlchemy | layer / plain |",
            "|---|---:|---:|---:|",
            f"| side | {pair['layer']} | {pair['plain']} | |",
        ]
        for key, label, scale, unit in (
            ("calls_per_lookup", "Python calls", 1, ""),
            ("profiled_cpu_s_per_lookup", "client CPU, profiled", 1e6, " µs"),
            ("cpu_s_per_lookup", "client CPU, unprofiled", 1e6, " µs"),
            ("wall_s_per_lookup", "wall time, unprofiled", 1e6, " µs"),
        ):
            a, b = layer[key] * scale, plain[key] * scale
            out.append(f"| {label} | {a:,.0f}{unit} | {b:,.0f}{unit} | {a / b:.2f}x |")
        packages = list(dict.fromkeys([*layer["calls_by_package"], *plain["calls_by_package"]]))
        for package in packages:
            a = layer["calls_by_package"].get(package, 0.0)
            b = plain["calls_by_package"].get(package, 0.0)
            out.append(f"| calls in {package} | {a:,.0f} | {b:,.0f} | |")
        out.append("")
        for side, name in ((layer, pair["layer"]), (plain, pair["plain"])):
            out += [
                f"Top {TOP} functions by own CPU time, {name} (per lookup):",
                "",
                "| function | calls | own CPU µs | cumulative CPU µs |",
                "|---|---:|---:|---:|",
            ]
            out += [
                f"| `{row['function']}` | {row['calls_per_lookup']:.1f} | "
                f"{row['own_cpu_us_per_lookup']:.1f} | {row['cumulative_cpu_us_per_lookup']:.1f} |"
                for row in side["top_by_own_time"]
            ]
            out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, profile, write markdown and JSON."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/profile.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--lookups", type=int, default=2000, help="per side (>= 100)")
    parser.add_argument("--rounds", type=int, default=5, help="unprofiled rounds (>= 1)")
    parser.add_argument("--output-dir", type=Path)
    args = parser.parse_args(argv)
    if args.lookups < 100 or args.rounds < 1:
        parser.error("--lookups must be at least 100 and --rounds at least 1")
    console = Console(highlight=False)

    def run(url: str) -> dict[str, Any]:
        load = os.getloadavg()
        result = asyncio.run(measure(url, args.lookups, args.rounds))
        after = os.getloadavg()
        result.update(
            measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
            lookups=args.lookups,
            rounds=args.rounds,
            load_average=f"{load[0]:.2f} at the start, {after[0]:.2f} at the end",
        )
        return result

    if args.database_url:
        result = run(args.database_url)
    else:
        with EmbeddedPostgres() as pg:
            result = run(pg.url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    directory = args.output_dir or Path(tempfile.mkdtemp(prefix="asyncdal-profile-"))
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{stamp}-profile.md"
    markdown.write_text(render(result) + "\n")
    (directory / f"{stamp}-profile.json").write_text(json.dumps(result, indent=2) + "\n")
    console.print(render(result))
    console.print(f"Written to {markdown} and its .json")


if __name__ == "__main__":
    main()
