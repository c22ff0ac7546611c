"""Database URLs: parsed for asyncpg, and rendered without their password.

Every URL the layer accepts goes through :func:`normalize_url`, and every URL it shows (a
``repr``, a log line, a message) through :func:`mask_url`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from asyncdal._errors import ConfigurationError
from asyncdal._multihost import expand_hosts
from asyncdal._url_params import url_query

__all__ = ["REPLICA_URL_SPLIT", "mask_url", "normalize_url", "replica_urls"]

_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg"}
# ASYNCDAL_REPLICA_URLS is split before each URL's scheme, not at every comma: a multi-host URL
# has commas of its own.
REPLICA_URL_SPLIT = re.compile(r"\s*,\s*(?=postgres(?:ql)?(?:\+asyncpg)?://)")


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and make it use the asyncpg driver.

    ``postgres://`` and ``postgresql://`` (as libpq and many platforms write them) become
    ``postgresql+asyncpg://``. Any other driver raises :class:`ConfigurationError`, and so does
    a query parameter the layer does not know (see :mod:`asyncdal._url_params`). A password
    given as ``?password=`` is moved to the URL's password, where every rendering masks it.
    A libpq multi-host URL
    (``postgresql://app@db1:5432,db2:5432/app?target_session_attrs=read-write``) is accepted:
    its hosts become ``host`` query parameters, which asyncpg tries in order.
    """
    if isinstance(url, str):
        url = expand_hosts(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        # The original message may echo the URL, password included: do not chain it.
        raise ConfigurationError("invalid database URL: it cannot be parsed") from None
    if parsed.drivername not in _DRIVERS:
        raise ConfigurationError(
            f"unsupported database URL scheme {parsed.drivername!r}: "
            "use postgresql+asyncpg:// (or postgresql://)"
        )
    query = url_query(parsed)
    if "password" in query:
        if parsed.password is not None and parsed.password != query["password"]:
            raise ConfigurationError("the database URL gives two different passwords")
        parsed = parsed.set(password=query["password"]).difference_update_query(["password"])
    return parsed.set(drivername="postgresql+asyncpg")


def mask_url(url: str | URL) -> str:
    """Render ``url`` with its password replaced by ``***``: safe for logs and messages.

    A password in the query (``?password=``) is masked as well.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return "<unparsable URL>"
    if "password" in parsed.query:
        # Rendered like any password: user:***@host.
        parsed = parsed.difference_update_query(["password"]).set(password="hidden")  # noqa: S106 (a placeholder, rendered as ***)
    return parsed.render_as_string(hide_password=True)


def replica_urls(urls: Iterable[str | URL] | str | URL) -> tuple[URL, ...]:
    """``urls`` (a list) as normalised URLs; one URL on its own is a mistake, refused."""
    if isinstance(urls, str | URL):
        raise ConfigurationError("replicas must be a list of URLs, not one URL")
    return tuple(normalize_url(u) for u in urls)
