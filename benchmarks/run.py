"""Run the benchmarks B1..B5 from a checkout; see docs/benchmarks.md.

    python benchmarks/run.py                       # full: scale-1 dataset, 9 interleaved rounds
    python benchmarks/run.py --quick               # under 2 minutes: smaller dataset, 5 rounds
    python benchmarks/run.py --output results.json

With no DATABASE_URL a throwaway PostgreSQL server is started. Results go to ``--output``, or to
a new temporary directory (printed), never into the current directory. Needs the ``[cli]`` extra
(rich) on top of the library.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from rich.console import Console

# `python benchmarks/run.py` puts benchmarks/ on sys.path; other callers (the tests) may not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from asyncdal.testing import EmbeddedPostgres
from harness import BENCHMARKS, NETWORK, run_benchmarks


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_true", help="smaller dataset, fewer repeats")
    profile.add_argument("--smoke", action="store_true", help="tiny sizes: checks the machinery")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per benchmark (>= 1)")
    parser.add_argument(
        "--only", action="append", choices=sorted([*BENCHMARKS, NETWORK]), default=[]
    )
    parser.add_argument("--output", type=Path, help="JSON results file")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, start a throwaway server if no URL is given, run the benchmarks."""
    args = _arguments(argv)
    console = Console(highlight=False)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"

    def run(url: str) -> None:
        asyncio.run(
            run_benchmarks(
                url,
                console,
                profile=profile,
                repeats=args.repeats,
                only=args.only,
                output=args.output,
            )
        )

    if args.database_url:
        run(args.database_url)
        return
    console.print("No DATABASE_URL: starting a throwaway PostgreSQL server for the benchmarks…")
    with EmbeddedPostgres() as pg:
        run(pg.url)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
