"""How cost grows with concurrency and fan-out width, as JSON and PNG charts (README "Benchmarks").

    python benchmarks/sweep.py --output-dir docs/results/sweep   # full sizes
    python benchmarks/sweep.py --quick                                 # smaller, to a temp dir

Point lookups at 1, 8, 64 and 256 concurrent tasks, and fan-outs of 1 to 64 reads, for the
layer, plain SQLAlchemy and raw asyncpg. With no DATABASE_URL a throwaway PostgreSQL server is
started. Needs the ``[bench]`` extra (matplotlib, rich).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

# `python benchmarks/sweep.py` puts benchmarks/ on sys.path; other callers may not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.console import Console

from asyncdal.testing import EmbeddedPostgres
from harness.context import PROFILES, open_context
from harness.sweeps import Sweep, concurrency_sweep, fanout_sweep


def _chart(sweep: Sweep, path: Path, *, log_y: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for name, medians in sweep.medians.items():
        ax.plot(sweep.xs, medians, marker="o", label=name)
        ax.fill_between(sweep.xs, sweep.lows[name], sweep.highs[name], alpha=0.15)
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xticks(sweep.xs, [str(x) for x in sweep.xs])
    ax.set_xlabel(sweep.x_label)
    ax.set_ylabel(sweep.y_label)
    ax.set_title(sweep.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _write(out: Path, document: dict[str, object], lookups: Sweep, fanout: Sweep) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(document, indent=2) + "\n")
    _chart(lookups, out / "sweep-concurrency.png", log_y=True)
    _chart(fanout, out / "sweep-fanout.png", log_y=False)


async def _run(url: str, out: Path, quick: bool, console: Console) -> None:
    from asyncdal import Database
    from asyncdal.cli._demo import migrate_and_seed

    profile = PROFILES["quick" if quick else "full"]
    async with Database.from_url(url, application_name="asyncdal-bench") as db:
        await migrate_and_seed(db, console, scale=profile.scale)
    rounds = 3 if quick else 5
    async with open_context(url, profile) as ctx:
        lookups = await concurrency_sweep(
            ctx, 512 if quick else 2048, rounds, lambda p: console.print(f"lookups: {p}")
        )
        fanout = await fanout_sweep(ctx, 0.02, rounds, lambda p: console.print(f"fan-out: {p}"))
    document = {"rounds": rounds, "lookups": lookups.as_json(), "fanout": fanout.as_json()}
    _write(out, document, lookups, fanout)
    for sweep in (lookups, fanout):
        console.print(f"\n{sweep.title} - {sweep.y_label} (median)")
        console.print("  " + "".join(f"{x:>10}" for x in sweep.xs))
        for name, medians in sweep.medians.items():
            console.print(f"  {name}\n  " + "".join(f"{m:>10,.0f}" for m in medians))
    console.print(f"Written to {out}")


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, start a throwaway server if no URL is given, run the sweeps."""
    parser = argparse.ArgumentParser(prog="benchmarks/sweep.py")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--output-dir", type=Path, help="where the JSON and PNGs go")
    args = parser.parse_args(argv)
    out = args.output_dir or Path(tempfile.mkdtemp(prefix="asyncdal-sweep-"))
    console = Console(highlight=False)
    if args.database_url:
        asyncio.run(_run(args.database_url, out, args.quick, console))
        return
    with EmbeddedPostgres() as pg:
        asyncio.run(_run(pg.url, out, args.quick, console))


if __name__ == "__main__":
    main()
