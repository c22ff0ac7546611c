"""``benchmarks/soak.py`` runs (a few seconds of it, bounded), so it cannot rot unnoticed.

The full run (10 minutes, a backend killed every 30 s) is a measurement, made by hand; its
figures are in the docs' "When things go wrong". Here: a short run against the test database
completes, kills backends, classifies every error, reports each interval, and the flatness
check it ends with says "grew" for a resource that grew.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from asyncdal import Database

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


async def test_a_short_soak_runs_kills_backends_and_reports_each_interval(
    committed_db: Database, migrated_url: str
) -> None:
    argv = [sys.executable, str(SOAK), "--url", migrated_url, "--minutes", "0.1"]
    argv += ["--interval", "2", "--kill-every", "1", "--workers", "4", "--warmup", "3"]
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["interval"] for line in lines] == [1, 2, 3]
    assert lines[-1]["kills"] >= 1
    assert sum(line["ops"] for line in lines) > 0
    assert not any(line["unexpected"] for line in lines)
    for key in ("rss_mb", "open_fds", "server_backends", "p50_ms", "p99_ms"):
        assert all(line[key] > 0 for line in lines), key
    for key in ("open_fds", "server_backends", "unaccounted"):
        assert all(line[f"{key}_peak"] >= line[key] for line in lines), key
    if sys.platform == "linux" and "glibc" in " ".join(platform.libc_ver()):
        assert all(0 < line["in_use_mb"] <= line["rss_mb"] for line in lines)
    assert "after warm-up" in done.stdout


def _soak_module() -> Any:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_flatness_check_flags_growth_after_the_warm_up() -> None:
    flat = _soak_module().flat

    def sample(rss: float, fds: int, backends: int) -> dict[str, Any]:
        return {"rss_mb": rss, "open_fds": fds, "server_backends": backends}

    steady = [sample(50, 10, 5), sample(70, 30, 20), sample(71, 31, 21), sample(72.5, 30, 20)]
    assert flat(steady, warmup=1) == []
    leaking_fds = [*steady, sample(72, 45, 20)]
    assert [g.split(":")[0] for g in flat(leaking_fds, warmup=1)] == ["open_fds"]
    growing = [*steady, sample(80, 30, 20)]
    assert [g.split(":")[0] for g in flat(growing, warmup=1)] == ["rss_mb"]
    # The warm-up's own growth does not count; one sample after it cannot be judged.
    assert flat([sample(10, 1, 1), sample(90, 90, 90)], warmup=1) == []


def test_with_the_allocators_figures_memory_is_judged_by_what_is_in_use() -> None:
    """The RSS less the allocator's retained free heap: a leak grows it, the glibc heap's
    free holes (RSS up, in use flat) do not."""
    flat = _soak_module().flat

    def sample(rss: float, in_use: float) -> dict[str, Any]:
        return {"rss_mb": rss, "in_use_mb": in_use, "open_fds": 30, "server_backends": 20}

    retained = [sample(70, 60), sample(80, 60), sample(85, 60.5), sample(90, 61)]
    assert flat(retained, warmup=1) == []
    leaking = [sample(70, 60), sample(80, 60), sample(85, 64), sample(90, 66)]
    assert [g.split(":")[0] for g in flat(leaking, warmup=1)] == ["in_use_mb"]
