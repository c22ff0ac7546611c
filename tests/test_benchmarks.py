"""The benchmark harness (``benchmarks/run.py``, not part of the package) runs end to end."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from asyncdal import Database

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


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
    output.unlink()  # noqa: ASYNC240
    # The harness made that directory for this file alone: leave no empty temp dir behind.
    assert output.parent.name.startswith("asyncdal-bench-")
    output.parent.rmdir()
    assert results["profile"] == "smoke"
    assert results["machine"]["cores"] >= 1
    benches = {b["id"]: b for b in results["benchmarks"]}
    assert sorted(benches) == ["B1", "B2", "B3", "B4"]
    expected = {
        "B1": {"db.gather", "sequential, one session", "raw asyncpg pool + gather"},
        "B2": {"db.gather", "sequential, one session", "raw asyncpg pool + gather"},
        "B3": {
            "repository.get, session per lookup",
            "repository.get, session per task",
            "plain session.get, session per lookup",
            "plain session.get, session per task",
            "raw asyncpg pool",
        },
        "B4": {
            "add_many",
            "ORM add_all + flush",
            "Core insert() with dicts",
            "asyncpg copy_records_to_table",
        },
    }
    for bench_id, names in expected.items():
        bench = benches[bench_id]
        got = {c["name"] for c in bench["contenders"]}
        assert names <= got, bench_id
        for contender in bench["contenders"]:
            assert contender["median_s"] > 0
            assert contender["throughput_per_s"] > 0
            assert len(contender["samples_s"]) == results["repeats"] == 1
        assert bench["target"]
        assert isinstance(bench["target_met"], bool)
        assert all(value > 0 for value in bench["ratios"].values())
    assert benches["B1"]["ratios"]["db.gather / one read alone"] > 0
    assert benches["B4"]["ratios"]["add_many / asyncpg COPY"] > 0
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
