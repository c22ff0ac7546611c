"""The benchmark harness (``benchmarks/``, not part of the package) runs end to end.

What is checked is the machinery (every contender ran and did what its label says, results
and chart written where asked, the delaying proxy delays), never a speed: no wall-clock
threshold, only lower bounds that a delay makes certain.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from asyncdal import Database
from tests._proxy import Proxy

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUN = BENCHMARKS / "run.py"
sys.path.insert(0, str(BENCHMARKS))

from harness.delay import delayed_url  # noqa: E402
from tables import END, START, render, replace_region  # noqa: E402


async def test_smoke_run_writes_every_contender_outside_the_working_directory(
    committed_db: Database, migrated_url: str, tmp_path: Path
) -> None:
    argv = [sys.executable, str(RUN), "--smoke", "--database-url", migrated_url]
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (nothing written where it ran)
    match = re.search(r"Results written to (\S+\.json)", " ".join(done.stdout.split()))
    assert match, done.stdout
    output = Path(match.group(1))
    results = json.loads(output.read_text())  # noqa: ASYNC240
    chart = output.with_name(f"{output.stem}-b5.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    chart.unlink()
    output.unlink()  # noqa: ASYNC240
    # The harness made that directory for this file alone: leave no empty temp dir behind.
    assert output.parent.name.startswith("asyncdal-bench-")
    output.parent.rmdir()
    assert results["profile"] == "smoke"
    assert results["machine"]["cores"] >= 1
    assert len(results["load_average"]["start"]) == 3
    benches = {b["id"]: b for b in results["benchmarks"]}
    assert sorted(benches) == ["B1", "B2", "B3", "B4", "B5 0 ms", "B5 1 ms"]
    reads = {
        "db.read() + repository.get, per lookup",
        "plain session + session.get, per lookup (closes with ROLLBACK)",
        "raw asyncpg pool",
    }
    expected = {
        "B1": {"db.gather", "sequential, one session", "raw asyncpg pool + gather"},
        "B2": {"db.gather", "sequential, one session", "raw asyncpg pool + gather"},
        "B3": reads
        | {
            "db.session(), unit of work of the task's repository.get",
            "plain sessionmaker.begin(), the task's session.get",
            "db.session() + repository.get, unit of work per lookup",
            "plain sessionmaker.begin() + session.get, per lookup",
            "db.get (coalesced)",
        },
        "B4": {
            "add_many",
            "ORM add_all + flush",
            "Core insert() with dicts",
            "asyncpg copy_records_to_table",
        },
        "B5 0 ms": reads,
        "B5 1 ms": reads,
    }
    for bench_id, names in expected.items():
        bench = benches[bench_id]
        got = {c["name"] for c in bench["contenders"]}
        assert names <= got, bench_id
        for contender in bench["contenders"]:
            assert contender["median_s"] > 0
            assert contender["throughput_per_s"] > 0
            assert len(contender["samples_s"]) == results["repeats"] == 1
        assert all(value > 0 for value in bench["ratios"].values())
        if bench_id != "B5 0 ms":  # B5 is judged at 1 ms only
            assert bench["target"]
            assert isinstance(bench["target_met"], bool)
    # The captions say what every contender shares.
    assert any("command_timeout 120 s" in note for note in benches["B3"]["notes"])
    assert benches["B1"]["ratios"]["db.gather / one read alone"] > 0
    assert benches["B4"]["ratios"]["add_many / asyncpg COPY"] > 0
    assert benches["B3"]["ratios"]["committed unit of work per task, layer / plain"] > 0
    # The proxy added its round trip: SELECT 1 took at least that much longer.
    slow = benches["B5 1 ms"]["measured"]
    assert slow["added_round_trip_s"] == pytest.approx(0.001)
    assert slow["round_trip_s"] >= 0.001
    assert "B4: bulk insert" in done.stdout
    # The bulk inserts were rolled back: only the seeded users remain.
    async with committed_db.session() as session:
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 100


def test_bad_arguments_fail_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--repeats", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--repeats must be at least 1, got 0" in done.stderr
    assert "Traceback" not in done.stderr


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        pass  # the proxy resets what is left when it closes
    writer.close()


async def _round_trips(port: int, messages: list[bytes]) -> tuple[list[float], bytes]:
    """Send each message and wait for its echo; the round trips and everything echoed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # The proxy's message counter reads a startup message first (length, protocol code).
    writer.write((8).to_bytes(4, "big") + (196608).to_bytes(4, "big"))
    await reader.readexactly(8)
    times, echoed = [], b""
    for message in messages:
        started = time.perf_counter()
        writer.write(message)
        await writer.drain()
        echoed += await reader.readexactly(len(message))
        times.append(time.perf_counter() - started)
    writer.close()
    return times, echoed


async def test_delayed_proxy_holds_every_chunk_each_way_and_keeps_order() -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    messages = [bytes([i]) * (1 + 5000 * i) for i in range(6)]
    try:
        async with Proxy("127.0.0.1", port, delay=0.02, lifetime=30) as proxy:
            times, echoed = await _round_trips(proxy.port, messages)
        assert echoed == b"".join(messages)
        # 20 ms each way: no round trip can be shorter than 40 ms (a lower bound only).
        assert min(times) >= 0.04
    finally:
        echo.close()
        await echo.wait_closed()


async def test_delayed_proxy_process_delays_and_ends_with_the_block() -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    try:
        async with delayed_url(f"postgresql://u@127.0.0.1:{port}/x", 0.015) as url:
            proxied = int(url.rsplit(":", 1)[1].split("/")[0])
            assert proxied != port
            times, echoed = await _round_trips(proxied, [b"a" * 10, b"b" * 70000, b"c"])
        assert echoed == b"a" * 10 + b"b" * 70000 + b"c"
        assert min(times) >= 0.03
        with pytest.raises(ConnectionRefusedError):  # the proxy process is gone
            await asyncio.open_connection("127.0.0.1", proxied)
    finally:
        echo.close()
        await echo.wait_closed()


def test_delay_is_bounded_and_the_proxy_forwards_to_this_machine_only() -> None:
    with pytest.raises(ValueError, match="delay must be between 0 and 1"):
        Proxy("127.0.0.1", 1, delay=-0.001)
    with pytest.raises(ValueError, match="delay must be between 0 and 1"):
        Proxy("127.0.0.1", 1, delay=float("nan"))

    async def remote() -> None:
        async with delayed_url("postgresql://u@db.example.com:5432/x", 0.001):
            pass

    with pytest.raises(ValueError, match="this machine only"):
        asyncio.run(remote())


def test_tables_replace_only_their_region_and_show_every_run() -> None:
    bench = {
        "id": "B9",
        "title": "a title",
        "unit": "ops",
        "contenders": [
            {"name": "fast", "median_s": 0.5, "min_s": 0.4, "max_s": 0.6, "throughput_per_s": 2},
            {"name": "slow", "median_s": 1.0, "min_s": 0.9, "max_s": 1.1, "throughput_per_s": 1},
        ],
        "ratios": {"fast / slow": 2.0, "slow / slow": 1.0, "derived": 1.5},
        "target": "fast >= 3x slow",
        "target_met": False,
        "notes": ["Every contender: the same."],
    }
    rerun = {**bench, "ratios": {"fast / slow": 2.5, "slow / slow": 1.0, "derived": 1.25}}
    runs: list[dict[str, Any]] = [
        {"benchmarks": [bench], "load_average": {"start": [5.0, 0, 0], "end": [6.0, 0, 0]}},
        {"benchmarks": [rerun]},
    ]
    tables = render(runs)
    assert "| fast | 500.0 ms | 400.0..600.0 | 2 | 2.00..2.50\u00d7 |" in tables
    assert "| *derived* | | | | 1.25..1.50\u00d7 |" in tables
    assert "target: fast >= 3x slow → missed, missed" in tables
    assert "load average 5.0 at the start, 6.0 at the end" in tables
    document = f"# Benchmarks\n\nprose before\n{START}\nold tables\n{END}\nprose after\n"
    written = replace_region(document, tables)
    assert "old tables" not in written
    assert written.startswith("# Benchmarks\n\nprose before\n")
    assert written.endswith(f"{END}\nprose after\n")
    with pytest.raises(SystemExit):
        replace_region("# no markers\n", tables)
