"""A throwaway local PostgreSQL server for the demo and the tests, used without DATABASE_URL.

``EmbeddedPostgres`` runs ``initdb`` into a fresh temporary directory, starts a postmaster on a free
127.0.0.1 port with durability switched off (the data is disposable, so speed wins), creates one
database, and removes everything on ``stop()``. If this process dies without stopping it (SIGKILL,
a crashed test run), a watchdog process (``_watchdog.py``) does the cleanup.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from asyncdal.testing._errors import EmbeddedPostgresError
from asyncdal.testing._pg_binaries import SUPERUSER, find_bin_dir, server_account
from asyncdal.testing._watchdog import TEMP_PREFIX

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_bin_dir"]

# Throwaway data: no durability. Tests open many connections at once.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
}
_BIND_FAILED = re.compile(r"could not bind|already in use|could not create any TCP/IP sockets")
_WATCHDOG = Path(__file__).with_name("_watchdog.py")
_COMMAND_TIMEOUT = 120.0
_PORT_ATTEMPTS = 5


def _free_port() -> int:
    # PostgreSQL rejects port 0: let the kernel pick one, release it, and retry on a clash.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class EmbeddedPostgres:
    """A throwaway PostgreSQL server in a temporary directory, trust auth on 127.0.0.1.

    Use ``with EmbeddedPostgres() as pg: ... pg.url ...`` or ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        database: str = "asyncdal",
        *,
        port: int | None = None,
        bin_dir: str | None = None,
        startup_timeout: float = 30,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """Configure the server; nothing runs until ``start()``.

        ``port=None`` picks a free port. ``settings`` are extra ``postgres -c`` options, on top
        of ``DEFAULT_SETTINGS``.
        """
        self.database = database
        self.user = SUPERUSER
        self.startup_seconds: float | None = None
        self._port_arg = port
        self._bin_dir_arg = bin_dir
        self._startup_timeout = startup_timeout
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._port: int | None = None
        self._temp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._owner_pid = os.getpid()

    def start(self) -> EmbeddedPostgres:
        """Create the cluster, start the server and the database; no-op if already running."""
        if self._proc is not None:
            return self
        bin_dir = find_bin_dir(self._bin_dir_arg)
        account = server_account()
        self._owner_pid = os.getpid()
        atexit.register(self._stop_at_exit)
        started = time.monotonic()
        try:  # also on Ctrl-C mid-way: stop() undoes whatever part already happened
            self._start(bin_dir, account)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Fast-shutdown the server and remove the temporary directory (idempotent)."""
        atexit.unregister(self._stop_at_exit)
        proc, self._proc = self._proc, None
        if proc is not None:
            self._shutdown(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        temp, self._temp = self._temp, None
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(OSError):
                if watchdog.stdin is not None:
                    watchdog.stdin.close()  # EOF: the watchdog finishes any leftover cleanup
            try:
                watchdog.wait(15)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        self._port = None

    def __enter__(self) -> EmbeddedPostgres:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server and remove its files."""
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int | None:
        """The TCP port on 127.0.0.1, while started."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, while started."""
        return None if self._proc is None else self._proc.pid

    @property
    def temp_dir(self) -> Path | None:
        """The temporary directory (data, socket and log), removed by ``stop()``."""
        return self._temp

    @property
    def data_dir(self) -> Path | None:
        """The cluster's data directory, while started."""
        return None if self._temp is None else self._temp / "data"

    @property
    def dsn(self) -> str:
        """A libpq/asyncpg DSN: ``postgresql://postgres@127.0.0.1:PORT/DATABASE``."""
        if self._port is None or self._proc is None:
            raise EmbeddedPostgresError("EmbeddedPostgres is not running; call start() first.")
        return f"postgresql://{self.user}@127.0.0.1:{self._port}/{self.database}"

    @property
    def url(self) -> str:
        """An SQLAlchemy URL: ``postgresql+asyncpg://postgres@127.0.0.1:PORT/DATABASE``."""
        return "postgresql+asyncpg" + self.dsn.removeprefix("postgresql")

    def __repr__(self) -> str:
        """State, port and data directory."""
        state = "running" if self.running else "exited" if self._proc else "stopped"
        return (
            f"EmbeddedPostgres(state={state!r}, port={self._port}, "
            f"database={self.database!r}, data_dir={str(self.data_dir) if self._temp else None!r})"
        )

    def _start(self, bin_dir: Path, account: tuple[int, int] | None) -> None:
        # /tmp, not $TMPDIR: the unix socket path must stay short (macOS TMPDIR is long), and as
        # root the postgres user must be able to reach it.
        temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir="/tmp"))
        self._temp = temp
        self._watchdog = subprocess.Popen(  # noqa: S603
            [sys.executable, "-I", str(_WATCHDOG), str(temp)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # terminal signals do not reach it
        )
        (temp / "sock").mkdir()
        if account is not None:
            for path in (temp, temp / "sock"):
                os.chown(path, *account)
        self._log = (temp / "postgres.log").open("ab")
        initdb = [str(bin_dir / "initdb"), "-D", str(temp / "data"), "-U", SUPERUSER]
        self._run([*initdb, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], account)
        self._launch(bin_dir, account)
        if self.database != "postgres":
            host = ["-h", str(temp / "sock"), "-p", str(self._port), "-U", SUPERUSER]
            self._run([str(bin_dir / "createdb"), *host, "--", self.database], None)

    def _launch(self, bin_dir: Path, account: tuple[int, int] | None) -> None:
        assert self._temp is not None
        assert self._log is not None
        settings = [arg for k, v in self._settings.items() for arg in ("-c", f"{k}={v}")]
        deadline = time.monotonic() + self._startup_timeout
        attempts = 1 if self._port_arg else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._port = self._port_arg or _free_port()
            log_offset = (self._temp / "postgres.log").stat().st_size
            cmd = [str(bin_dir / "postgres"), "-D", str(self._temp / "data")]
            cmd += ["-p", str(self._port), "-k", str(self._temp / "sock"), "-h", "127.0.0.1"]
            # Popen, not pg_ctl: we own the process and its exit status. New session: a terminal
            # Ctrl-C must not hit the server before we shut it down in order.
            self._proc = self._popen(cmd + settings, account, stdout=self._log)
            if self._wait_ready(self._proc, deadline, log_offset):
                return
            tail = self._log_tail(log_offset)
            self._tell(f"-{self._proc.pid}")
            self._proc = None
            if attempt < attempts and _BIND_FAILED.search(tail):
                continue  # someone else took the port between our probe and the bind
            raise EmbeddedPostgresError(f"PostgreSQL exited during startup; log:\n{tail}")

    def _wait_ready(self, proc: subprocess.Popen[bytes], deadline: float, log_offset: int) -> bool:
        """True once the postmaster reports "ready" in its lock file; False if it exited."""
        assert self._temp is not None
        pid_file = self._temp / "data" / "postmaster.pid"
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":  # pg_ctl's own check
                    return True
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL did not accept connections within {self._startup_timeout}s; "
                    f"log:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.02)
        return False

    def _popen(
        self, cmd: list[str], account: tuple[int, int] | None, stdout: IO[bytes] | int
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(  # noqa: S603
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            cwd=self._temp,
            env={k: v for k, v in os.environ.items() if not k.startswith("PG")},  # no PGHOST...
            start_new_session=True,  # pgid == pid: the watchdog kills the whole group
            user=None if account is None else account[0],
            group=None if account is None else account[1],
            extra_groups=None if account is None else [],
        )
        self._tell(f"+{proc.pid}")
        return proc

    def _run(self, cmd: list[str], account: tuple[int, int] | None) -> None:
        proc = self._popen(cmd, account, stdout=subprocess.PIPE)
        try:
            output, _ = proc.communicate(timeout=_COMMAND_TIMEOUT)
        except BaseException:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            self._tell(f"-{proc.pid}")
        if proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(cmd[0]).name} failed with exit status {proc.returncode}:\n"
                + output.decode(errors="replace")[-3000:]
            )

    def _shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        # SIGINT = fast shutdown (disconnects clients); then immediate (SIGQUIT), then SIGKILL.
        for sig, timeout in ((signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, None)):
            with contextlib.suppress(OSError):
                if sig == signal.SIGINT:
                    proc.send_signal(sig)  # to the postmaster only: it stops its children
                else:
                    os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self._tell(f"-{proc.pid}")

    def _tell(self, message: str) -> None:
        """Tell the watchdog about a process group to kill if we die (+pid) or one gone (-pid)."""
        if self._watchdog is not None and self._watchdog.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._watchdog.stdin.write(f"{message}\n".encode())
                self._watchdog.stdin.flush()

    def _log_tail(self, offset: int) -> str:
        assert self._temp is not None
        if self._log is not None:
            self._log.flush()
        with (self._temp / "postgres.log").open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")[-3000:]

    def _stop_at_exit(self) -> None:
        if os.getpid() == self._owner_pid:  # not in a forked child: the server is the parent's
            self.stop()
