"""Multi-host URLs as libpq writes them: ``postgresql://app@db1:5432,db2:5432/app``.

libpq (and so most tooling and managed services) lists failover hosts comma-separated in the
URL's host part; asyncpg tries them in order, with ``target_session_attrs`` choosing the one
that fits (``read-write``: the primary). SQLAlchemy's URL parser cannot read that form; it
takes the same list as repeated ``host`` query parameters instead. This module rewrites the
one into the other before the URL is parsed.
"""

from __future__ import annotations

import re

from asyncdal._errors import ConfigurationError

__all__ = ["expand_hosts"]

# scheme://[userinfo@]hosts[/database][?query]: the host part is what holds the commas.
_URL = re.compile(r"\A(?P<scheme>[^:/?#]+://)(?P<netloc>[^/?#]*)(?P<rest>.*)\Z", re.S)
_HOST = re.compile(r"\A(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(?P<port>\d{1,5}))?\Z")
_DEFAULT_PORT = "5432"


def expand_hosts(url: str) -> str:
    """``url`` with a comma-separated host list moved to ``?host=h:p&host=...``; else as is.

    A host without a port gets 5432 (SQLAlchemy wants all or none). An empty or malformed
    host in the list raises :class:`ConfigurationError` (without echoing the URL, which may
    hold a password).
    """
    match = _URL.match(url)
    if match is None:
        return url
    netloc = match.group("netloc")
    userinfo, _, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url
    params = []
    for index, entry in enumerate(hosts.split(","), start=1):
        host = _HOST.match(entry.strip())
        if host is None:
            raise ConfigurationError(f"invalid database URL: host {index} of the list is malformed")
        port = host.group("port") or _DEFAULT_PORT
        if not 0 < int(port) < 65536:
            raise ConfigurationError(f"invalid database URL: port of host {index} is out of range")
        params.append(f"host={host.group('host')}:{port}")
    rest = match.group("rest")
    path, _, query = rest.partition("?")
    joined = "&".join(params + ([query] if query else []))
    prefix = f"{userinfo}@" if userinfo else ""
    return f"{match.group('scheme')}{prefix}{path or '/'}?{joined}"
