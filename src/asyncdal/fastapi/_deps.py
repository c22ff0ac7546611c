"""FastAPI dependencies: the app's one :class:`Database` and a unit of work per request.

``DatabaseDep`` is for endpoints that fan out (``await db.gather(...)``: a session per read);
``SessionDep`` is one session for the request, committed when the endpoint returns and before
the response is sent, rolled back if the endpoint raises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from asyncdal import DALSession, Database, DatabaseUnavailableError

__all__ = ["DatabaseDep", "SessionDep", "get_db", "get_session"]


def get_db(request: Request) -> Database:
    """The :class:`Database` the app holds in ``app.state.db`` (set by :func:`lifespan`)."""
    db: Database | None = getattr(request.app.state, "db", None)
    if db is None:
        # Only when requests arrive before the lifespan ran (or after it ended).
        raise DatabaseUnavailableError("the service has no database: it is not started")
    return db


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[DALSession]:
    """One session for the request: committed when the endpoint returns, else rolled back."""
    async with db.session() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_db)]
# scope="function": the commit runs when the endpoint returns and *before* the response is
# sent, so a 201 is never answered for an order whose commit then failed, and a commit error
# still reaches the exception handlers.
SessionDep = Annotated[DALSession, Depends(get_session, scope="function")]
