"""What differs between the SQLAlchemy lines asyncdal supports (2.0 LTS and 2.1), in one place.

Everything else uses API common to both; a difference is decided here, by version, never by
``getattr`` fallbacks at the point of use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy
import sqlalchemy.util

__all__ = ["SQLALCHEMY_2_1", "await_in_greenlet"]

#: SQLAlchemy 2.1 or later: ``AsyncSession.delete_all``/``merge_all`` exist.
SQLALCHEMY_2_1: bool = tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2]) >= (2, 1)

#: Await a coroutine from sync code that SQLAlchemy's greenlet bridge runs (a pool's connect,
#: an engine's dispose event). 2.1 names it ``await_``; ``await_only``, 2.0's name, goes in 2.2.
await_in_greenlet: Callable[[Awaitable[Any]], Any] = (
    sqlalchemy.util.await_ if SQLALCHEMY_2_1 else sqlalchemy.util.await_only
)
