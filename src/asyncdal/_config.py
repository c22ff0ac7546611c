"""Settings: where the database is and how the connection pool behaves."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

from sqlalchemy.engine import URL

from asyncdal._errors import ConfigurationError
from asyncdal._url_params import url_fields, url_query
from asyncdal._urls import REPLICA_URL_SPLIT, mask_url, normalize_url, replica_urls

__all__ = ["Settings", "timeout_ms"]

#: The largest statement_timeout PostgreSQL accepts, in seconds (INT_MAX milliseconds).
MAX_SERVER_TIMEOUT = (2**31 - 1) / 1000
#: ``failover_timeout`` on a multi-host URL unless set: longer than an HA manager's failover
#: after a crash (Patroni: its leader lease, ttl 30 s by default, then a loop and the promotion).
DEFAULT_FAILOVER_TIMEOUT = 45.0


def timeout_ms(seconds: float) -> int:
    """``seconds`` as whole milliseconds for the server, rounded up: never down to 0 ("none")."""
    # The small epsilon keeps 0.1 s at 100 ms despite 0.1 * 1000 == 100.00000000000001.
    return max(1, math.ceil(seconds * 1000 - 1e-6))


@dataclass(frozen=True, kw_only=True, repr=False)
class Settings:
    """How to reach the database and size the pool.

    Build one with :meth:`from_env` or directly; :meth:`Database.from_url` accepts the same
    fields as keyword arguments.

    Attributes:
        url: the database URL (``postgresql+asyncpg://user:password@host/db``).
        pool_size: connections kept open in the pool.
        max_overflow: extra connections opened under load, closed when returned.
        pool_timeout: seconds to wait for a free connection before
            :class:`DatabaseUnavailableError`.
        pool_recycle: seconds after which a connection is replaced (``-1``: never).
        pool_pre_ping: test each connection when it is checked out. Off by default: it costs
            a round trip on every checkout (measured in benchmarks B1/B3). Without it, the first
            use of a connection the server dropped raises :class:`DatabaseUnavailableError`
            and SQLAlchemy then replaces every older pooled connection; turn it on where a
            proxy or firewall cuts idle connections behind the pool's back.
        statement_timeout: seconds a statement may run on the server (``None``: no limit);
            sent in milliseconds, rounded up.
        command_timeout: seconds the client waits for the answer to one database call before
            it gives up on the connection (:class:`QueryTimeoutError`; the connection is
            discarded). It bounds the wait when the network or the server vanished, which a
            server-side ``statement_timeout`` cannot. ``None`` (default): ``statement_timeout``
            plus 2 s when that is set, else 120 s.
        connect_timeout: seconds to wait while opening a connection.
        failover_timeout: seconds during which opening a connection keeps trying the URL's
            hosts, with backoff, while none fits (refused, not answering, starting up, or no
            writable primary yet for ``target_session_attrs=read-write``): a failover then
            costs the caller a pause rather than an error. ``None`` (default): 45 s for a
            multi-host URL (``db1,db2,db3``), 0 for a single host, so that a stopped server
            fails fast with :class:`DatabaseUnavailableError`. ``0``: never retry. When > 0,
            ``db.transaction`` also retries a lost connection for this much longer and checks
            a COMMIT whose answer was lost (one more round trip per unit of work that wrote).
        client_check_interval: seconds between the server's checks, during a long query, that
            its client is still connected (PostgreSQL 14+'s ``client_connection_check_interval``).
            A query whose client went away (a killed process, a connection the client dropped
            on a timeout or a cancellation) then stops within this interval instead of running
            to its end and holding its locks. ``None`` (default): the server's setting (off
            unless configured), because servers before 14 refuse the parameter.
        application_name: shown in ``pg_stat_activity``, so the layer's queries can be found.
        echo: log every statement (SQLAlchemy's ``echo``).
        slow_query_threshold: seconds; a statement that runs longer is logged at WARNING on
            the ``asyncdal.slow_query`` logger with its duration and text, never its
            parameters (``None``: off, and then it costs nothing).
        read_pool_size: connections kept open in the read pool (``None``: ``pool_size``). Reads
            outside a unit of work (``db.gather`` without ``consistent``, ``db.read()``,
            ``db.get``) run there, on connections that cannot write
            (``default_transaction_read_only``) and need no transaction: one round trip per
            statement. It may open ``max_overflow`` more under load, like the main pool, so one
            process holds at most ``capacity + read_capacity`` server connections. ``0``: no
            read pool; those reads run on the main pool in ``BEGIN READ ONLY`` transactions
            (two round trips more per read, no extra connections; e.g. behind PgBouncer in
            transaction mode, which forwards no startup settings).
        replicas: URLs of streaming replicas of ``url``; reads without a unit of work
            (``db.read()``, ``db.gather``) go to them (see ``docs/scaling.md``).
        replica_wait: seconds a read after a write waits for a replica to replay that write
            before it reads from the primary instead.
        pgbouncer: the URL points at PgBouncer in transaction mode: no statement cache (its
            named prepared statements would collide on shared server connections) and no
            startup ``statement_timeout`` (PgBouncer refuses it; set it on the role); no read
            pool either (its read-only startup setting would be refused too).
        token_secret: the key that signs write tokens (``db.write_token()``, the
            ``ReadYourWrites`` cookie), at least 16 characters, the same in every process of
            the service (``ASYNCDAL_TOKEN_SECRET``). ``None``: a random key per process (a
            warning is logged when replicas are configured), so a token from another process
            is ignored. Never shown by ``repr``.
    """

    url: URL
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout: float = 30.0
    pool_recycle: float = 1800.0
    pool_pre_ping: bool = False
    statement_timeout: float | None = None
    command_timeout: float | None = None
    connect_timeout: float = 10.0
    failover_timeout: float | None = None
    client_check_interval: float | None = None
    application_name: str = "asyncdal"
    echo: bool = False
    slow_query_threshold: float | None = None
    read_pool_size: int | None = None
    replicas: tuple[URL, ...] = ()
    replica_wait: float = 0.5
    pgbouncer: bool = False
    token_secret: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_url(self.url))
        object.__setattr__(self, "replicas", replica_urls(self.replicas))
        if not self.replica_wait >= 0:
            raise ConfigurationError(f"replica_wait must be >= 0, got {self.replica_wait!r}")
        if self.pgbouncer and self.client_check_interval is not None:
            raise ConfigurationError(
                "client_check_interval cannot be sent through PgBouncer (pgbouncer=True): it "
                "refuses the startup parameter; set it on the role instead"
            )
        if self.pgbouncer and self.statement_timeout is not None:
            raise ConfigurationError(
                "statement_timeout cannot be sent through PgBouncer (pgbouncer=True): it "
                "refuses the startup parameter; set it on the role instead "
                "(ALTER ROLE ... SET statement_timeout = ...)"
            )
        _check_types(self)
        # URL parameters that are settings (application_name, connect_timeout) apply unless
        # the same setting was given with another value.
        for name, value in url_fields(url_query(self.url)).items():
            current = getattr(self, name)
            if current != _DEFAULTS[name] and current != value:
                raise ConfigurationError(
                    f"{name} is given twice, as {current!r} and in the URL as {value!r}"
                )
            object.__setattr__(self, name, value)
        if self.pool_size < 1:
            raise ConfigurationError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.read_pool_size is not None and self.read_pool_size < 0:
            raise ConfigurationError(
                f"read_pool_size must be >= 0 or None, got {self.read_pool_size}"
            )
        if self.max_overflow < 0:
            raise ConfigurationError(f"max_overflow must be >= 0, got {self.max_overflow}")
        for name in (
            "pool_timeout",
            "connect_timeout",
            "statement_timeout",
            "command_timeout",
            "slow_query_threshold",
            "client_check_interval",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be positive, got {value!r}")
        if self.failover_timeout is not None and self.failover_timeout < 0:
            raise ConfigurationError(
                f"failover_timeout must be >= 0 or None, got {self.failover_timeout!r}"
            )
        if self.pool_recycle <= 0 and self.pool_recycle != -1:
            raise ConfigurationError(
                f"pool_recycle must be positive or -1 (never), got {self.pool_recycle!r}"
            )
        for name in ("statement_timeout", "client_check_interval"):
            value = getattr(self, name)
            if value is not None and value > MAX_SERVER_TIMEOUT:
                raise ConfigurationError(
                    f"{name} must be at most {MAX_SERVER_TIMEOUT:g} s, got {value!r}"
                )
        if "\x00" in self.application_name:
            raise ConfigurationError("application_name contains a NUL byte")
        if self.token_secret is not None and len(self.token_secret) < 16:
            raise ConfigurationError("token_secret must be at least 16 characters")

    @classmethod
    def from_url(cls, url: str | URL, **options: Any) -> Settings:
        """Settings for ``url`` (a string or an SQLAlchemy ``URL``); ``options`` are the fields.

        ``Settings(url=...)`` accepts a string too (it is parsed and normalised), but is typed
        for a ``URL``; this is the typed way to start from a string. An unknown option is a
        :class:`ConfigurationError` naming it.
        """
        _check_names(options)
        return cls(url=normalize_url(url), **options)

    @property
    def effective_command_timeout(self) -> float:
        """The client-side limit per database call, in seconds (see ``command_timeout``)."""
        if self.command_timeout is not None:
            return self.command_timeout
        if self.statement_timeout is not None:
            return self.statement_timeout + 2.0
        return 120.0

    @property
    def multi_host(self) -> bool:
        """The URL lists more than one host (libpq's ``db1,db2`` form): a failover cluster."""
        hosts = self.url.query.get("host", ())
        return not isinstance(hosts, str) and len(hosts) > 1

    @property
    def effective_failover_timeout(self) -> float:
        """Seconds a connect keeps trying through a failover (see ``failover_timeout``)."""
        if self.failover_timeout is not None:
            return self.failover_timeout
        return DEFAULT_FAILOVER_TIMEOUT if self.multi_host else 0.0

    @property
    def capacity(self) -> int:
        """The most connections the pool will open at once."""
        return self.pool_size + self.max_overflow

    @property
    def read_capacity(self) -> int:
        """The most connections the read pool will open at once (``0``: no read pool)."""
        if self.pgbouncer:
            return 0  # PgBouncer forwards no startup settings (default_transaction_read_only)
        size = self.pool_size if self.read_pool_size is None else self.read_pool_size
        return size + self.max_overflow if size else 0

    def __repr__(self) -> str:
        values = ", ".join(
            f"{f.name}={_shown(f.name, getattr(self, f.name))}" for f in fields(self)
        )
        return f"Settings({values})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from the environment.

        ``DATABASE_URL`` is required. Optional: ``ASYNCDAL_POOL_SIZE``,
        ``ASYNCDAL_MAX_OVERFLOW``, ``ASYNCDAL_POOL_TIMEOUT``, ``ASYNCDAL_POOL_RECYCLE``,
        ``ASYNCDAL_POOL_PRE_PING``, ``ASYNCDAL_STATEMENT_TIMEOUT``,
        ``ASYNCDAL_CONNECT_TIMEOUT``, ``ASYNCDAL_FAILOVER_TIMEOUT``,
        ``ASYNCDAL_APPLICATION_NAME``, ``ASYNCDAL_ECHO``,
        ``ASYNCDAL_SLOW_QUERY_THRESHOLD``, ``ASYNCDAL_READ_POOL_SIZE``.
        ``ASYNCDAL_SLOW_QUERY_THRESHOLD``,
        ``ASYNCDAL_REPLICA_URLS`` (comma-separated), ``ASYNCDAL_REPLICA_WAIT``,
        ``ASYNCDAL_PGBOUNCER``, ``ASYNCDAL_TOKEN_SECRET``.
        Keyword ``overrides`` win over the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        url = env.get("DATABASE_URL")
        if url:
            values["url"] = url
        for f in fields(cls):
            raw = env.get(f"ASYNCDAL_{f.name.upper()}")
            if f.name == "replicas":
                urls = env.get("ASYNCDAL_REPLICA_URLS", "").strip()
                if urls:
                    values["replicas"] = tuple(REPLICA_URL_SPLIT.split(urls))
                continue
            if raw is None or f.name == "url":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        _check_names(overrides)
        values.update(overrides)
        if "url" not in values:
            raise ConfigurationError("DATABASE_URL is not set")
        return cls(**values)


def _parse(name: str, raw: str, annotation: object) -> object:
    """Convert one environment variable to the field's type, or say which variable is wrong."""
    kind = str(annotation)
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "int | None":
            return None if raw.strip().lower() in {"", "none"} else int(raw)
        if kind.startswith("float"):
            if kind.endswith("None") and raw.strip().lower() in {"", "none"}:
                return None
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
            return number
    except ValueError:
        raise ConfigurationError(f"ASYNCDAL_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
_TYPES = {f.name: str(f.type) for f in fields(Settings)}


def _check_names(options: Mapping[str, object]) -> None:
    unknown = sorted(set(options) - _TYPES.keys() - {"url"})
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {unknown}; settings: {sorted(_TYPES.keys() - {'url'})}"
        )


_KIND_NAMES = {"float | None": "a finite number", "float": "a finite number", "int | None": "int"}


def _check_types(settings: Settings) -> None:
    """Each field has its declared type: no ``"5"`` for an int, no bool for a number, no NaN."""
    for name, kind in _TYPES.items():
        if name in {"url", "replicas"}:  # URLs, checked by normalize_url
            continue
        value = getattr(settings, name)
        if value is None and kind.endswith("None"):
            continue
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind.startswith("int"):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind.startswith("float"):
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigurationError(
                f"{name} must be {_KIND_NAMES.get(kind, kind)}"
                f"{' or None' if kind.endswith('None') else ''}, got {value!r}"
            )


def _shown(name: str, value: object) -> str:
    """A setting as ``repr`` shows it: URLs with their password masked."""
    if name == "url" and isinstance(value, str | URL):
        return mask_url(value)
    if name == "token_secret" and value is not None:
        return "'***'"
    if name == "replicas" and isinstance(value, tuple):
        return "(" + ", ".join(mask_url(u) for u in value) + ")"
    return repr(value)
