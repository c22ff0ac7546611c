"""Round trips and client CPU per operation of the B1 and B3 contenders (see README "Benchmarks").

    python benchmarks/roundtrips.py     # no DATABASE_URL: a throwaway embedded server

Runs the benchmarks' own contenders (``harness``; profile ``smoke`` but with the full
profile's 40 lookups per B3 task, so a session per task is amortized as in B3) once through a
counting TCP proxy: every Sync or simple Query message the client sends waits for the server's
ReadyForQuery, so their count is the number of round trips. Then, directly, it measures the
client's CPU time (``time.process_time``) per operation. Prints a table; measures nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import struct
import time
from collections import Counter

from rich.console import Console
from rich.table import Table

from asyncdal import Database
from asyncdal.cli._demo import migrate_and_seed
from harness.context import PROFILES, open_context
from harness.fanout import fanout_benchmark
from harness.harness import Benchmark
from harness.lookups import lookups_benchmark

SSL_OR_GSS_REQUEST = {80877103, 80877104}


class CountingProxy:
    """A TCP proxy to PostgreSQL counting the client's Sync ('S') and Query ('Q') messages."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.counts: Counter[str] = Counter()
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    @property
    def round_trips(self) -> int:
        return self.counts["S"] + self.counts["Q"]

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.target)

        async def upstream() -> None:
            started = False  # untyped messages (SSLRequest, StartupMessage) come first
            buffer = b""
            while data := await client_r.read(65536):
                server_w.write(data)
                buffer += data
                while True:
                    if not started:
                        if len(buffer) < 8:
                            break
                        (length, code) = struct.unpack("!ii", buffer[:8])
                        if len(buffer) < length:
                            break
                        buffer = buffer[length:]
                        started = code not in SSL_OR_GSS_REQUEST
                        continue
                    if len(buffer) < 5:
                        break
                    kind, length = buffer[:1].decode("latin-1"), struct.unpack("!i", buffer[1:5])[0]
                    if len(buffer) < 1 + length:
                        break
                    self.counts[kind] += 1
                    buffer = buffer[1 + length :]
            server_w.close()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                client_w.write(data)
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


async def measure(url: str, host: str, port: int, console: Console) -> None:
    async with Database.from_url(url) as db:
        await migrate_and_seed(db, console, scale=0.01)
    proxy = CountingProxy(host, port)
    server = await proxy.start()
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
    server.close()
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
