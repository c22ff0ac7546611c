"""Pagination, sorting and filtering parameters of the list endpoints.

``limit``, ``offset``, ``cursor`` and ``sort`` are checked by FastAPI (bounds, lengths). Every
other query parameter is a filter, ``field`` or ``field__op``, handed to the repository as is:
the repository checks the name against its allowlist and converts the value, and its
:class:`InvalidQueryError` (a 422 here) names what is allowed. ``__in`` and ``__not_in`` take
comma-separated values or the parameter repeated::

    GET /users/?username__startswith=ad&follower_count__gte=10&sort=-follower_count&limit=20
    GET /orders/?status__in=pending,paid&cursor=eyJ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Query, Request

from asyncdal import InvalidQueryError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_OFFSET", "Listing", "listing"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Deep offsets make PostgreSQL read and discard every skipped row: use the cursor instead.
MAX_OFFSET = 100_000
MAX_FILTERS = 20
_RESERVED = frozenset({"limit", "offset", "cursor", "sort"})
_LIST_OPS = ("__in", "__not_in")


@dataclass(frozen=True)
class Listing:
    """What a list endpoint was asked for, ready for ``Repository.list``."""

    limit: int = DEFAULT_LIMIT
    offset: int | None = None
    cursor: str | None = None
    sort: list[str] = field(default_factory=list)
    where: dict[str, object] = field(default_factory=dict)


def _filters(request: Request) -> dict[str, object]:
    params = request.query_params
    names = [name for name in dict.fromkeys(params.keys()) if name not in _RESERVED]
    if len(names) > MAX_FILTERS:
        raise InvalidQueryError(f"too many filters: at most {MAX_FILTERS}")
    where: dict[str, object] = {}
    for name in names:
        values = params.getlist(name)
        if name.endswith(_LIST_OPS):
            where[name] = [item for value in values for item in value.split(",") if item]
        elif len(values) > 1:
            raise InvalidQueryError(f"filter {name!r} given more than once")
        else:
            where[name] = values[0]
    return where


def listing(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    offset: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="rows to skip (offset paging)")
    ] = None,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=2048, description="next_cursor of a page")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[-+]?[a-z_]+(,[-+]?[a-z_]+)*$",
            description="comma-separated sort keys; prefix '-' for descending",
        ),
    ] = None,
) -> Listing:
    """The FastAPI dependency building a :class:`Listing` from the query string."""
    if offset is not None and cursor is not None:
        raise InvalidQueryError("give either offset or cursor, not both")
    return Listing(
        limit=limit,
        offset=offset,
        cursor=cursor,
        sort=sort.split(",") if sort else [],
        where=_filters(request),
    )
