"""Real multi-server set-ups for the scaling tests: streaming replicas, PgBouncer, failover.

Everything runs on 127.0.0.1, on free ports, in temporary directories removed on exit (also when
the block raises, and by the embedded server's watchdog process if the test run is killed).
Servers run as the ``postgres`` account when the tests run as root, like
:class:`EmbeddedPostgres` does (PostgreSQL and PgBouncer both refuse root).

- :func:`standby`: a hot standby of a running primary, made with ``pg_basebackup -R``, with an
  optional ``recovery_min_apply_delay`` so replication lag is visible.
- :func:`pgbouncer`: PgBouncer in transaction mode in front of a server.
- :func:`sync_pair`: a primary and a synchronous standby (a commit returns only once the
  standby has the WAL), and :meth:`Standby.promote` to fail over.

The primary is an :class:`EmbeddedPostgres`; its initdb (trust auth) already allows replication
connections from 127.0.0.1, and ``wal_level=replica`` / ``max_wal_senders`` are the defaults.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from asyncdal.testing import EmbeddedPostgres
from asyncdal.testing._pg_binaries import SUPERUSER, find_bin_dir, server_account
from asyncdal.testing._watchdog import TEMP_PREFIX

__all__ = [
    "PgBouncer",
    "Standby",
    "find_pgbouncer",
    "pgbouncer",
    "requires_pgbouncer",
    "requires_replication",
    "standby",
    "sync_pair",
    "wait_until",
]

_STARTUP = 30.0


def _bin_dir() -> Path | None:
    try:
        found = find_bin_dir()
    except Exception:
        return None
    return found if all((found / b).exists() for b in ("pg_basebackup", "pg_ctl")) else None


def find_pgbouncer() -> str | None:
    """The ``pgbouncer`` executable (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")


requires_replication = pytest.mark.skipif(
    _bin_dir() is None, reason="PostgreSQL server binaries (pg_basebackup, pg_ctl) not installed"
)
requires_pgbouncer = pytest.mark.skipif(
    find_pgbouncer() is None or _bin_dir() is None, reason="pgbouncer is not installed"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


_WATCHDOG = Path(sys.modules[EmbeddedPostgres.__module__].__file__ or "").with_name("_watchdog.py")


@contextlib.contextmanager
def _temp_dir(kind: str) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A temporary directory and a watchdog that removes it, and kills what ran there, when
    this block ends or this process dies (even by SIGKILL: the watchdog sees its stdin close)."""
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{kind}-", dir="/tmp"))
    account = server_account()
    if account is not None:
        os.chown(temp, *account)
    watchdog = subprocess.Popen(
        [sys.executable, "-I", str(_WATCHDOG), str(temp)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield temp, watchdog
    finally:
        if watchdog.stdin is not None:
            watchdog.stdin.close()
        watchdog.wait(30)
        shutil.rmtree(temp, ignore_errors=True)


def _popen(
    cmd: list[str], log: Path, cwd: Path, watchdog: subprocess.Popen[bytes] | None = None
) -> subprocess.Popen[bytes]:
    account = server_account()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
            start_new_session=True,
            user=None if account is None else account[0],
            group=None if account is None else account[1],
            extra_groups=None if account is None else [],
        )
    if watchdog is not None and watchdog.stdin is not None:
        watchdog.stdin.write(f"+{proc.pid}\n".encode())
        watchdog.stdin.flush()
    return proc


def _run(cmd: list[str], cwd: Path) -> None:
    log = cwd / "command.log"
    proc = _popen(cmd, log, cwd)
    if proc.wait(120) != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (PostgreSQL: fast shutdown; PgBouncer: safe shutdown), then SIGKILL the group."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, 9)
            proc.wait()


def wait_until(check: object, what: str, timeout: float = _STARTUP) -> None:
    """Poll ``check()`` (a callable returning a truthy value) until true, or fail the test."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Standby:
    """A running standby server: its URL, data directory and process."""

    port: int
    database: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]
    bin_dir: Path

    @property
    def url(self) -> str:
        """An SQLAlchemy URL for the standby's copy of the database."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """A DSN for raw asyncpg."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        """Fast-shutdown the standby (its files stay until the block ends)."""
        _stop(self.process)

    def promote(self) -> None:
        """Make the standby a primary (``pg_ctl promote``, waiting until it accepts writes)."""
        _run(
            [str(self.bin_dir / "pg_ctl"), "promote", "-w", "-D", str(self.data_dir)],
            self.log.parent,
        )


def _pid_status(data_dir: Path) -> str:
    with contextlib.suppress(OSError):
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        if len(lines) >= 8:
            return lines[7].strip()
    return ""


@contextlib.contextmanager
def standby(
    primary: EmbeddedPostgres,
    *,
    apply_delay_ms: int = 0,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Standby]:
    """A hot standby of ``primary`` (``pg_basebackup -R``), removed when the block ends."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    assert primary.port is not None
    with _temp_dir("standby") as (temp, watchdog):
        data = temp / "data"
        _run(
            [
                str(bin_dir / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER),
                *("-D", str(data), "-R", "-X", "stream", "--no-sync", "-c", "fast"),
            ],
            temp,
        )
        (temp / "sock").mkdir()
        account = server_account()
        if account is not None:
            os.chown(temp / "sock", *account)
        port = _free_port()
        options = {
            # A hot standby needs at least the primary's max_connections (200 in the tests).
            "max_connections": "200",
            "fsync": "off",
            "hot_standby": "on",
            "wal_receiver_status_interval": "1s",
            "recovery_min_apply_delay": f"{apply_delay_ms}ms",
            **(settings or {}),
        }
        cmd = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
        cmd += ["-k", str(temp / "sock"), "-h", "127.0.0.1"]
        cmd += [arg for k, v in options.items() for arg in ("-c", f"{k}={v}")]
        log = temp / "standby.log"
        proc = _popen(cmd, log, temp, watchdog)
        try:
            wait_until(
                lambda: proc.poll() is not None or _pid_status(data) in {"ready", "standby"},
                "the standby to accept connections",
            )
            if proc.poll() is not None:
                raise RuntimeError(f"the standby exited:\n{log.read_text()[-3000:]}")
            yield Standby(port, primary.database, data, log, proc, bin_dir)
        finally:
            _stop(proc)


@dataclass
class PgBouncer:
    """A running PgBouncer: its port and the URL of a database through it."""

    port: int
    database: str

    @property
    def url(self) -> str:
        """An SQLAlchemy URL of the database, through PgBouncer."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    def stats(self) -> dict[str, int]:
        """PgBouncer's own counters for the database (``SHOW STATS``: total_query_count...).

        Through ``psql``: the admin console speaks the simple query protocol only.
        """
        bin_dir = _bin_dir()
        assert bin_dir is not None
        out = subprocess.run(
            [
                str(bin_dir / "psql"),
                "-X",
                "-A",
                "-F",
                "\t",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "pgbouncer",
                "-c",
                "SHOW STATS",
            ],
            capture_output=True,
            check=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
        ).stdout.decode()
        header, *rows = out.splitlines()
        names = header.split("\t")
        for row in rows:
            values = dict(zip(names, row.split("\t"), strict=False))
            if values.get("database") == self.database:
                return {k: int(v) for k, v in values.items() if v.isdigit()}
        return {}


@contextlib.contextmanager
def pgbouncer(server_port: int, database: str, *, pool_size: int = 4) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of ``127.0.0.1:server_port``.

    ``pool_size`` server connections per database/user pair: small, so that many client
    connections share each server connection, as in production.
    """
    executable = find_pgbouncer()
    assert executable is not None
    with _temp_dir("bouncer") as (temp, watchdog):
        port = _free_port()
        (temp / "users.txt").write_text(f'"{SUPERUSER}" ""\n')
        (temp / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host=127.0.0.1 port={server_port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {temp / 'users.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 1000",
                    "server_reset_query =",
                    f"admin_users = {SUPERUSER}",
                    "stats_period = 1",
                    f"logfile = {temp / 'pgbouncer.log'}",
                    f"pidfile = {temp / 'pgbouncer.pid'}",
                    "",
                ]
            )
        )
        account = server_account()
        if account is not None:
            for path in temp.iterdir():
                os.chown(path, *account)
        log = temp / "stdout.log"
        proc = _popen([executable, str(temp / "pgbouncer.ini")], log, temp, watchdog)
        try:
            wait_until(lambda: proc.poll() is not None or _accepts(port), "PgBouncer to listen")
            if proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{log.read_text()[-3000:]}")
            yield PgBouncer(port, database)
        finally:
            _stop(proc)


@contextlib.contextmanager
def sync_pair(database: str = "asyncdal") -> Iterator[tuple[EmbeddedPostgres, Standby]]:
    """A primary and a synchronous hot standby: every acknowledged commit is on both.

    The primary runs with ``synchronous_commit=on``; ``synchronous_standby_names`` is set
    once the standby is connected (earlier, the primary's own set-up would wait for it).
    """
    primary = EmbeddedPostgres(database, settings={"synchronous_commit": "on"})
    with primary, standby(primary) as replica:
        _psql(primary, "ALTER SYSTEM SET synchronous_standby_names = '*'")
        _psql(primary, "SELECT pg_reload_conf()")
        wait_until(
            lambda: (
                _psql(primary, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
                == "1"
            ),
            "the standby to become synchronous",
        )
        yield primary, replica


def _psql(server: EmbeddedPostgres, sql: str) -> str:
    """Run one statement on ``server`` with ``psql``; its output, unaligned and bare."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    assert server.port is not None
    out = subprocess.run(
        [
            str(bin_dir / "psql"),
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            str(server.port),
            "-U",
            SUPERUSER,
            "-d",
            server.database,
            "-c",
            sql,
        ],
        capture_output=True,
        check=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
    )
    return out.stdout.decode().strip()
