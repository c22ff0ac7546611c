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
- :func:`patroni_cluster`: etcd and three Patroni nodes in synchronous mode, with the events
  an HA cluster lives through (:meth:`PatroniCluster.switchover`, :meth:`PatroniNode.kill`).

The primary is an :class:`EmbeddedPostgres`; its initdb (trust auth) already allows replication
connections from 127.0.0.1, and ``wal_level=replica`` / ``max_wal_senders`` are the defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from asyncdal.testing import EmbeddedPostgres
from asyncdal.testing._pg_binaries import SUPERUSER, find_bin_dir, server_account
from asyncdal.testing._watchdog import TEMP_PREFIX

__all__ = [
    "HAProxy",
    "PatroniCluster",
    "PatroniNode",
    "PgBouncer",
    "Standby",
    "find_etcd",
    "find_haproxy",
    "find_patroni",
    "find_pgbouncer",
    "haproxy",
    "haproxy_config",
    "patroni_cluster",
    "pgbouncer",
    "requires_haproxy",
    "requires_patroni",
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


# --- Patroni: etcd and three PostgreSQL nodes under an HA manager ---------------------------

#: Where .ci/run installs Patroni (a venv of the system Python: Patroni runs as ``postgres``,
#: which cannot reach an interpreter under root's home); ASYNCDAL_PATRONI overrides it.
PATRONI_VENV = Path("/opt/asyncdal-patroni/venv")
#: Patroni's leader lease and loop, short so that a failover fits in a test. 20 s is the
#: shortest lease Patroni accepts: it raises a smaller ttl to 20 without a word.
PATRONI_TTL = 20
PATRONI_LOOP_WAIT = 2


def find_patroni() -> Path | None:
    """The ``patroni`` executable (``patronictl`` beside it), or ``None``."""
    candidates = [os.environ.get("ASYNCDAL_PATRONI", ""), str(PATRONI_VENV / "bin" / "patroni")]
    candidates.append(shutil.which("patroni") or "")
    for candidate in candidates:
        path = Path(candidate)
        if candidate and path.is_file() and (path.parent / "patronictl").is_file():
            return path
    return None


def find_etcd() -> str | None:
    """The ``etcd`` server executable (Debian's ``etcd-server``)."""
    return shutil.which("etcd") or shutil.which("etcd", path="/usr/sbin:/usr/local/bin")


def find_haproxy() -> str | None:
    """The ``haproxy`` executable (Debian puts it in /usr/sbin)."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


requires_patroni = pytest.mark.skipif(
    find_patroni() is None or find_etcd() is None or _bin_dir() is None,
    reason="Patroni and etcd are not installed (.ci/run installs etcd-server and Patroni)",
)
requires_haproxy = pytest.mark.skipif(find_haproxy() is None, reason="haproxy is not installed")


@dataclass
class PatroniNode:
    """One Patroni-managed PostgreSQL node: its ports, data directory and Patroni process."""

    name: str
    port: int
    rest_port: int
    data_dir: Path
    config: Path
    process: subprocess.Popen[bytes]

    def state(self) -> dict[str, object]:
        """Patroni's view of this node (``GET /patroni``); empty when it does not answer."""
        return _rest_json(self.rest_port, "/patroni")

    def postmaster_pid(self) -> int | None:
        """The PID of this node's postmaster, if it is running."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def kill(self) -> None:
        """SIGKILL Patroni, then the postmaster and its backends: the node's machine died."""
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, 9)
        self.process.wait(10)
        pid = self.postmaster_pid()
        if pid is not None:
            children = _children(pid)
            for victim in (pid, *children):
                with contextlib.suppress(OSError):
                    os.kill(victim, 9)


def _children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (a postmaster's backends), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _rest_json(port: int, path: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as answer:
            data = json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # /primary answers 503 on a replica, with a body
        try:
            data = json.loads(exc.read())
        except ValueError:
            return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class PatroniCluster:
    """etcd plus three Patroni nodes in synchronous mode: URLs, roles, and the events."""

    nodes: list[PatroniNode]
    database: str
    patroni: Path
    watchdog: subprocess.Popen[bytes]

    @property
    def patronictl(self) -> Path:
        """``patronictl``, beside ``patroni``."""
        return self.patroni.parent / "patronictl"

    def url(self, attrs: str = "read-write") -> str:
        """The libpq multi-host URL of every node, with ``target_session_attrs``."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return (
            f"postgresql+asyncpg://{SUPERUSER}@{hosts}/{self.database}?target_session_attrs={attrs}"
        )

    def node_url(self, node: PatroniNode) -> str:
        """A URL of ``node`` alone."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{node.port}/{self.database}"

    def restart(self, node: PatroniNode) -> None:
        """Start Patroni again on a node that was killed: it rejoins as a replica."""
        node.process = _popen(
            [str(self.patroni), str(node.config)],
            node.config.with_name("patroni.log"),
            node.config.parent,
            self.watchdog,
        )

    def members(self) -> list[dict[str, object]]:
        """The cluster as Patroni reports it (``GET /cluster`` of any live node)."""
        for node in self.nodes:
            if node.process.poll() is None:
                members = _rest_json(node.rest_port, "/cluster").get("members")
                if isinstance(members, list):
                    return [m for m in members if isinstance(m, dict)]
        return []

    def leader(self) -> PatroniNode | None:
        """The node Patroni has as the running leader, if there is one."""
        for member in self.members():
            if member.get("role") == "leader" and member.get("state") == "running":
                return self._node(member.get("name"))
        return None

    def sync_standby(self) -> PatroniNode | None:
        """The streaming synchronous standby, if there is one."""
        for member in self.members():
            if member.get("role") == "sync_standby" and member.get("state") == "streaming":
                return self._node(member.get("name"))
        return None

    def _node(self, name: object) -> PatroniNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def healthy(self) -> bool:
        """A running leader and a streaming synchronous standby."""
        return self.leader() is not None and self.sync_standby() is not None

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Wait (bounded) until there is a leader and a synchronous standby."""
        wait_until(self.healthy, "a Patroni leader and a synchronous standby", timeout)

    def wait_for_new_leader(self, old: PatroniNode, timeout: float) -> PatroniNode:
        """Wait (bounded) until a running leader other than ``old`` is reported; that one."""
        wait_until(lambda: self.leader() not in (None, old), "a new leader", timeout)
        new = self.leader()
        assert new is not None
        return new

    def switchover(self, timeout: float = 90.0) -> None:
        """``patronictl switchover --force``, again until the leader role has moved (bounded).

        In synchronous mode Patroni hands the role only to a synchronous standby that has
        caught up; while none has (a standby just restarted by an earlier test), patronictl
        may answer without anything moving, and exit 0 all the same. So each try waits for a
        healthy cluster first and for the new leader after: when it returns, the leader has
        moved.
        """
        old = self.leader()
        assert old is not None
        deadline = time.monotonic() + timeout
        answers: list[str] = []
        while True:
            self.wait_healthy(max(1.0, deadline - time.monotonic()))
            out = subprocess.run(
                [str(self.patronictl), "-c", str(old.config), "switchover", "--force"],
                capture_output=True,
                timeout=120,
                check=False,
            )
            answers.append(f"exit {out.returncode}: {out.stdout[-300:]!r} {out.stderr[-300:]!r}")
            try:
                self.wait_for_new_leader(old, 20.0)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no switchover happened: {answers}") from None
            else:
                return


def _patroni_config(
    name: str,
    temp: Path,
    etcd_port: int,
    port: int,
    rest_port: int,
    bin_dir: Path,
) -> str:
    """One node's Patroni configuration (YAML is a superset of JSON: written as JSON)."""
    node_dir = temp / name
    config = {
        "scope": "asyncdal",
        "name": name,
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{rest_port}",
            "connect_address": f"127.0.0.1:{rest_port}",
        },
        "etcd3": {"hosts": f"127.0.0.1:{etcd_port}"},
        "bootstrap": {
            "dcs": {
                "ttl": PATRONI_TTL,
                "loop_wait": PATRONI_LOOP_WAIT,
                "retry_timeout": 4,
                "maximum_lag_on_failover": 1048576,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "max_connections": 200,
                        "wal_level": "replica",
                        "hot_standby": "on",
                        "wal_log_hints": "on",
                        "synchronous_commit": "on",
                        "fsync": "off",
                        "wal_receiver_status_interval": "1s",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{port}",
            "connect_address": f"127.0.0.1:{port}",
            "data_dir": str(node_dir / "data"),
            "bin_dir": str(bin_dir),
            "pgpass": str(node_dir / "pgpass"),
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": "postgres"},
                "replication": {"username": SUPERUSER, "password": "postgres"},
                "rewind": {"username": SUPERUSER, "password": "postgres"},
            },
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",
            ],
            "parameters": {"unix_socket_directories": str(node_dir)},
        },
    }
    return json.dumps(config, indent=1)


@contextlib.contextmanager
def patroni_cluster(database: str = "asyncdal") -> Iterator[PatroniCluster]:
    """etcd and three Patroni nodes (synchronous mode), removed when the block ends.

    Waits (bounded) until a leader and a synchronous standby run, then creates ``database``.
    """
    patroni = find_patroni()
    etcd = find_etcd()
    bin_dir = _bin_dir()
    assert patroni is not None
    assert etcd is not None
    assert bin_dir is not None
    with _temp_dir("patroni") as (temp, watchdog):
        account = server_account()
        client, peer = _free_port(), _free_port()
        etcd_proc = _popen(
            [
                etcd,
                *("--name", "etcd0", "--data-dir", str(temp / "etcd")),
                *("--listen-client-urls", f"http://127.0.0.1:{client}"),
                *("--advertise-client-urls", f"http://127.0.0.1:{client}"),
                *("--listen-peer-urls", f"http://127.0.0.1:{peer}"),
                *("--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"),
                *("--initial-cluster", f"etcd0=http://127.0.0.1:{peer}"),
            ],
            temp / "etcd.log",
            temp,
            watchdog,
        )
        nodes: list[PatroniNode] = []
        try:
            wait_until(lambda: etcd_proc.poll() is not None or _accepts(client), "etcd to listen")
            if etcd_proc.poll() is not None:
                raise RuntimeError(f"etcd exited:\n{(temp / 'etcd.log').read_text()[-3000:]}")
            for index in range(3):
                name = f"node{index + 1}"
                node_dir = temp / name
                node_dir.mkdir()
                port, rest_port = _free_port(), _free_port()
                config = node_dir / "patroni.yml"
                config.write_text(_patroni_config(name, temp, client, port, rest_port, bin_dir))
                if account is not None:
                    for path in (node_dir, config):
                        os.chown(path, *account)
                proc = _popen(
                    [str(patroni), str(config)], node_dir / "patroni.log", node_dir, watchdog
                )
                nodes.append(PatroniNode(name, port, rest_port, node_dir / "data", config, proc))
            cluster = PatroniCluster(nodes, database, patroni, watchdog)
            try:
                cluster.wait_healthy()
            except RuntimeError:
                logs = "\n".join(
                    f"--- {n.name}:\n{(n.data_dir.parent / 'patroni.log').read_text()[-1500:]}"
                    for n in nodes
                )
                raise RuntimeError(f"the Patroni cluster did not come up:\n{logs}") from None
            leader = cluster.leader()
            assert leader is not None
            _run(
                [
                    str(bin_dir / "createdb"),
                    *("-h", "127.0.0.1", "-p", str(leader.port), "-U", SUPERUSER, database),
                ],
                temp,
            )
            yield cluster
        finally:
            for node in nodes:  # all at once: each takes seconds to stop its PostgreSQL
                with contextlib.suppress(OSError):
                    node.process.send_signal(2)
            for node in nodes:
                _stop(node.process)
                node.kill()  # whatever a stuck Patroni left running
            _stop(etcd_proc)


@dataclass
class HAProxy:
    """HAProxy in front of a Patroni cluster: a port to the primary, one to the replicas."""

    primary_port: int
    replica_port: int
    stats_port: int
    database: str

    @property
    def primary_url(self) -> str:
        """The URL of the database through the primary port."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.primary_port}/{self.database}"

    @property
    def replica_url(self) -> str:
        """The URL of the database through the replica port (round robin)."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.replica_port}/{self.database}"

    def up(self) -> dict[str, set[str]]:
        """The servers each port routes to now (passing their check), from the stats page."""
        try:
            url = f"http://127.0.0.1:{self.stats_port}/stats;csv"
            with urllib.request.urlopen(url, timeout=2) as answer:
                header, *rows = answer.read().decode().splitlines()
        except OSError:
            return {}
        names = header.lstrip("# ").split(",")
        found: dict[str, set[str]] = {"primary": set(), "replicas": set()}
        for row in rows:
            values = dict(zip(names, row.split(","), strict=False))
            server = values.get("svname") not in {"FRONTEND", "BACKEND"}
            if server and values.get("pxname") in found and values.get("status") == "UP":
                found[values["pxname"]].add(values["svname"])
        return found

    def routes_to(self, cluster: PatroniCluster) -> bool:
        """The primary port leads to the leader alone, the replica port to the others alone.

        HAProxy starts every server as up; this waits until the checks have said otherwise.
        """
        leader = cluster.leader()
        if leader is None:
            return False
        others = {n.name for n in cluster.nodes if n is not leader and n.process.poll() is None}
        return self.up() == {"primary": {leader.name}, "replicas": others}


def haproxy_config(cluster: PatroniCluster, primary: int, replica: int, stats: int) -> str:
    """HAProxy's configuration for ``cluster``: the recipe docs/scaling.md shows."""
    servers = [
        f"    server {n.name} 127.0.0.1:{n.port} check port {n.rest_port}" for n in cluster.nodes
    ]
    check = [
        "    option httpchk",
        "    http-check expect status 200",
        # A node that fails its check loses its connections at once, so clients reconnect to
        # the new primary instead of waiting on a demoted or dead one.
        "    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
    ]
    lines = [
        "global",
        "    maxconn 1000",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 30m",
        "    timeout server 30m",
        "    timeout check 2s",
        "listen stats",
        "    mode http",
        f"    bind 127.0.0.1:{stats}",
        "    stats enable",
        "    stats uri /stats",
        "listen primary",
        f"    bind 127.0.0.1:{primary}",
        *check[:1],
        "    http-check send meth GET uri /primary",
        *check[1:],
        *servers,
        "listen replicas",
        f"    bind 127.0.0.1:{replica}",
        "    balance roundrobin",
        *check[:1],
        "    http-check send meth GET uri /replica",
        *check[1:],
        *servers,
        "",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def haproxy(cluster: PatroniCluster) -> Iterator[HAProxy]:
    """HAProxy routing to ``cluster``'s primary and replicas by Patroni's REST checks."""
    executable = find_haproxy()
    assert executable is not None
    with _temp_dir("haproxy") as (temp, watchdog):
        primary, replica, stats = _free_port(), _free_port(), _free_port()
        config = temp / "haproxy.cfg"
        config.write_text(haproxy_config(cluster, primary, replica, stats))
        account = server_account()
        if account is not None:
            os.chown(config, *account)
        log = temp / "haproxy.log"
        proc = _popen([executable, "-db", "-f", str(config)], log, temp, watchdog)
        try:
            wait_until(lambda: proc.poll() is not None or _accepts(stats), "HAProxy to listen")
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{log.read_text()[-3000:]}")
            yield HAProxy(primary, replica, stats, cluster.database)
        finally:
            _stop(proc)
