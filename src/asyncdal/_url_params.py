"""libpq-style query parameters of a database URL, translated to what asyncpg expects.

Managed PostgreSQL services hand out URLs such as
``postgres://app:pw@db.example.com/app?sslmode=require``. SQLAlchemy passes every query
parameter to ``asyncpg.connect()`` as a keyword argument, and asyncpg has none called
``sslmode`` (it crashes with a ``TypeError``). The parameters users paste are translated
here; any other one is refused with a :class:`ConfigurationError` naming it, at start-up rather
than at the first connection.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

from asyncdal._errors import ConfigurationError

__all__ = ["SSL_MODES", "URL_PARAMETERS", "connect_args_from_url", "url_fields", "url_query"]

#: libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html).
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
_FILES = ("sslrootcert", "sslcert", "sslkey")
#: The query parameters a URL may carry; ``password`` is moved into the URL's password.
URL_PARAMETERS = (
    "application_name",
    "connect_timeout",
    "host",
    "options",
    "password",
    "sslcert",
    "sslkey",
    "sslmode",
    "sslrootcert",
    "target_session_attrs",
)


def url_query(url: URL) -> dict[str, str]:
    """The URL's query parameters, each given once and known; else ConfigurationError."""
    query: dict[str, str] = {}
    for name, value in url.query.items():
        if name not in URL_PARAMETERS:
            raise ConfigurationError(
                f"unknown database URL parameter {name!r}; supported: {list(URL_PARAMETERS)}"
            )
        if name == "host":
            # Failover hosts (repeatable, see _multihost): left in the URL for SQLAlchemy,
            # which hands asyncpg its host and port lists.
            continue
        if not isinstance(value, str):
            raise ConfigurationError(f"database URL parameter {name!r} is given more than once")
        if "\x00" in value:
            raise ConfigurationError(f"database URL parameter {name!r} contains a NUL byte")
        query[name] = value
    _check(query)
    return query


def _check(query: Mapping[str, str]) -> None:
    mode = query.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise ConfigurationError(f"sslmode={mode!r} is not one of {list(SSL_MODES)}")
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in _SESSION_ATTRS:
        raise ConfigurationError(
            f"target_session_attrs={attrs!r} is not one of {list(_SESSION_ATTRS)}"
        )
    for name in _FILES:
        path = query.get(name)
        if path is not None and not os.path.isfile(path):
            raise ConfigurationError(f"{name}: no such file: {path!r}")
    if "sslkey" in query and "sslcert" not in query:
        raise ConfigurationError("sslkey is given without sslcert")
    if mode == "disable" and any(name in query for name in _FILES):
        raise ConfigurationError("sslmode=disable contradicts the ssl certificate parameters")


def url_fields(query: Mapping[str, str]) -> dict[str, Any]:
    """The :class:`Settings` fields a URL sets: ``application_name``, ``connect_timeout``."""
    fields: dict[str, Any] = {}
    if "application_name" in query:
        fields["application_name"] = query["application_name"]
    if "connect_timeout" in query:
        raw = query["connect_timeout"]
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        # libpq reads 0 as "wait forever"; the layer always bounds the wait, so refuse it.
        if not math.isfinite(seconds) or seconds <= 0:
            raise ConfigurationError(
                f"connect_timeout={raw!r} in the URL must be a positive number of seconds"
            )
        fields["connect_timeout"] = seconds
    return fields


def connect_args_from_url(query: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``asyncpg.connect()`` from the URL's libpq parameters."""
    args: dict[str, Any] = {}
    if "options" in query:
        # libpq's ``options`` ("-c search_path=app") is a startup parameter of its own.
        args["server_settings"] = {"options": query["options"]}
    if "target_session_attrs" in query:
        args["target_session_attrs"] = query["target_session_attrs"]
    ssl_arg = _ssl(query)
    if ssl_arg is not None:
        args["ssl"] = ssl_arg
    return args


def _ssl(query: Mapping[str, str]) -> ssl.SSLContext | str | bool | None:
    """libpq's sslmode semantics as asyncpg's ``ssl`` argument."""
    mode = query.get("sslmode")
    root = query.get("sslrootcert")
    if mode is None and not any(name in query for name in _FILES):
        return None  # asyncpg's default, like libpq's: prefer
    if mode == "disable":
        return False
    if mode in ("allow", "prefer") and "sslcert" not in query:
        return mode  # asyncpg implements the fallback to plain text itself
    if mode in (None, "allow", "prefer", "require") and root is None:
        # Encrypted, but the server's certificate is not checked (libpq's "require" when no
        # root certificate is given).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        # verify-ca, verify-full, or require with a root certificate (libpq then verifies the
        # chain as for verify-ca).
        try:
            context = ssl.create_default_context(cafile=root)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"sslrootcert cannot be loaded: {type(exc).__name__}"
            ) from None
        context.check_hostname = mode == "verify-full"
    if "sslcert" in query:
        try:
            context.load_cert_chain(query["sslcert"], query.get("sslkey"))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"sslcert/sslkey cannot be loaded: {type(exc).__name__}"
            ) from None
    return context
