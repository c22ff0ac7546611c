"""The throwaway local PostgreSQL server: start, connect, stop, and cleanup after a crash."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from asyncdal.testing import EmbeddedPostgres, EmbeddedPostgresError
from asyncdal.testing._embedded import find_bin_dir


def _have_postgres() -> bool:
    try:
        find_bin_dir()
    except EmbeddedPostgresError:
        return False
    return True


needs_postgres = pytest.mark.skipif(not _have_postgres(), reason="PostgreSQL is not installed")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; zombies (orphans nobody reaped yet) count as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


async def _query(dsn: str) -> tuple[int, str, str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "select 1 as one, current_database() as db, current_user as usr,"
            " current_setting('max_connections')::int as max_conn"
        )
        assert row is not None
        return row["one"], row["db"], row["usr"], row["max_conn"]
    finally:
        await conn.close()


@needs_postgres
def test_start_connect_and_stop_removes_everything() -> None:
    with EmbeddedPostgres() as pg:
        assert pg.running
        temp_dir, pid, port = pg.temp_dir, pg.pid, pg.port
        assert temp_dir is not None
        assert pid is not None
        assert port is not None
        assert temp_dir.name.startswith("asyncdal-pg-")
        assert (temp_dir / "data" / "PG_VERSION").exists()
        assert pg.url == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/asyncdal"
        assert pg.dsn == f"postgresql://postgres@127.0.0.1:{port}/asyncdal"
        assert f"port={port}" in repr(pg)
        assert "'running'" in repr(pg)
        assert asyncio.run(_query(pg.dsn)) == (1, "asyncdal", "postgres", 200)
    assert not temp_dir.exists()
    assert not _alive(pid)
    assert "'stopped'" in repr(pg)
    with pytest.raises(EmbeddedPostgresError, match="not running"):
        _ = pg.url


@needs_postgres
def test_explicit_port_database_and_idempotent_stop() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pg = EmbeddedPostgres("other_db", port=port)
    assert pg.start() is pg
    try:
        assert pg.port == port
        assert pg.url.endswith(f"@127.0.0.1:{port}/other_db")
        assert asyncio.run(_query(pg.dsn))[1] == "other_db"
        temp_dir, pid = pg.temp_dir, pg.pid
    finally:
        pg.stop()
    pg.stop()  # a second stop is a no-op
    assert temp_dir is not None
    assert pid is not None
    assert not temp_dir.exists()
    assert not _alive(pid)
    assert pg.port is None


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from asyncdal.testing._embedded import EmbeddedPostgres
    pg = EmbeddedPostgres().start()
    print(pg.temp_dir, pg.pid, flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _run_child(mode: str) -> tuple[subprocess.CompletedProcess[str], Path, int]:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=90
    )
    match = re.fullmatch(r"(\S+) (\d+)\n", child.stdout)
    assert match, (child.stdout, child.stderr)
    return child, Path(match[1]), int(match[2])


@needs_postgres
def test_watchdog_cleans_up_when_the_parent_is_sigkilled() -> None:
    child, temp_dir, pid = _run_child("kill")
    assert child.returncode == -9
    assert temp_dir.name.startswith("asyncdal-pg-")
    assert _wait_until(lambda: not _alive(pid), 15), f"postmaster {pid} still running"
    assert _wait_until(lambda: not temp_dir.exists(), 15), f"{temp_dir} not removed"


@needs_postgres
def test_atexit_stops_the_server_when_the_program_just_exits() -> None:
    child, temp_dir, pid = _run_child("exit")
    assert child.returncode == 0, child.stderr
    # atexit did the work synchronously: nothing left by the time the child has exited.
    assert not temp_dir.exists()
    assert not _alive(pid)


def test_bad_bin_dir_raises_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedPostgresError, match="DATABASE_URL") as info:
        EmbeddedPostgres(bin_dir=str(tmp_path)).start()
    assert str(tmp_path) in str(info.value)
    assert "apt-get install -y postgresql" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_bad_env_bin_dir_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASYNCDAL_PG_BIN", str(tmp_path / "nope"))
    with pytest.raises(EmbeddedPostgresError, match="ASYNCDAL_PG_BIN") as info:
        find_bin_dir()
    assert "DATABASE_URL" in str(info.value)
