"""Round trips and client CPU per operation of the B1 and B3 contenders (docs/benchmarks.md).

    python benchmarks/roundtrips.py     # no DATABASE_URL: a throwaway embedded server

Runs the benchmarks' own contenders (``harness``; profile ``smoke`` but with the full
profile's 40 lookups per B3 task, so a session per task is amortized as in B3) once through
``tests/_proxy.py``'s proxy (the one B5 delays with), which counts messages: every Sync or
simple Query the client sends waits for the server's ReadyForQuery, so their count is the
number of round trips. Then, directly, it measures the
client's CPU time (``time.process_time``) per operation. Prints a table; measures nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# `python benchmarks/roundtrips.py` puts benchmarks/ on sys.path; the proxy is in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._proxy import Proxy

from asyncdal import Database
from asyncdal.cli._demo import migrate_and_seed
from harness.context import PROFILES, open_context
from harness.fanout import fanout_benchmark
from harness.harness import Benchmark
from harness.lookups import lookups_benchmark


async def measure(url: str, host: str, port: int, console: Console) -> None:
    async with Database.from_url(url) as db:
        await migrate_and_seed(db, console, scale=0.01)
    proxy = Proxy(host, port, max_connections=64, lifetime=3600)
    await proxy.start()
    proxied = url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    profile = dataclasses.replace(PROFILES["smoke"], lookups=PROFILES["full"].lookups)
    builders = (fanout_benchmark, lookups_benchmark)
    trips: dict[str, float] = {}
    async with open_context(proxied, profile) as ctx:
        for build in builders:
            bench: Benchmark = build(ctx)
            for contender in bench.contenders:
                await contender.sample()  # warm-up: connections opened, statements prepared
                before = proxy.round_trips
                done = await contender.sample()
                ops = done[0] if isinstance(done, tuple) else done
                trips[f"{bench.id} {contender.name}"] = (proxy.round_trips - before) / ops
    await proxy.close()
    cpu: dict[str, float] = {}
    async with open_context(url, profile) as ctx:
        for build in builders:
            bench = build(ctx)
            for contender in bench.contenders:
                first = await contender.sample()
                samples = 30 if (first[0] if isinstance(first, tuple) else first) < 10 else 3
                started, ops = time.process_time(), 0
                for _ in range(samples):
                    done = await contender.sample()
                    ops += done[0] if isinstance(done, tuple) else done
                cpu[f"{bench.id} {contender.name}"] = (time.process_time() - started) / ops
    table = Table(title="Round trips and client CPU per operation (B1: a read; B3: a lookup)")
    table.add_column("contender")
    table.add_column("round trips", justify="right")
    table.add_column("client CPU", justify="right")
    for name, value in trips.items():
        table.add_row(name, f"{value:.2f}", f"{cpu[name] * 1e6:,.0f} µs")
    console.print(table)


def main() -> None:
    from sqlalchemy.engine import make_url

    from asyncdal.testing import EmbeddedPostgres

    console = Console()
    url = os.environ.get("DATABASE_URL")
    if url:
        parsed = make_url(url)
        asyncio.run(measure(url, parsed.host or "localhost", parsed.port or 5432, console))
        return
    with EmbeddedPostgres() as pg:
        asyncio.run(measure(pg.url, "127.0.0.1", pg.port or 5432, console))


if __name__ == "__main__":
    main()
