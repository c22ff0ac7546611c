"""What a unit of work did on its connection: whether it connected, whether it wrote.

Two facts the layer needs after a ``db.session()`` or ``db.transaction()`` ends:

- **connected**: the session began a transaction on a connection (SQLAlchemy's
  ``after_begin``). A lost connection then means a lost *established* connection, which
  ``db.transaction`` may retry; a session that never connected failed to connect, which is not
  retried there (a stopped server fails fast).
- **wrote**: a statement other than a read ran (``after_cursor_execute`` of the session's
  connection; flushes, Core DML and ``text()`` all go through it), or the layer's COPY path
  said so (:func:`mark_written`). Only then is the primary's WAL position worth a round trip
  and the context's later reads worth a wait for replicas, and a ``db.transaction`` worth a
  commit marker. Watched only when asked (:data:`WATCH_WRITES` in a sessionmaker's ``info``:
  a database with replicas does; :func:`watch_writes` for one session), so a database without
  replicas pays nothing per statement.

Both live in ``Session.info``, SQLAlchemy's public per-session dictionary.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from asyncdal._cursor_events import cursor_listener

__all__ = ["WATCH_WRITES", "connected", "mark_written", "watch_writes", "wrote"]

_CONNECTED = "asyncdal.connected"
_WATCH = "asyncdal.watch_writes"
_WROTE = "asyncdal.wrote"
#: A sessionmaker's ``info`` whose sessions are all watched (a Database with replicas).
WATCH_WRITES = {_WATCH: True}

# Statements that never write by themselves (the first keyword, after comments). Anything else
# counts as a write: over-counting costs a wait for replicas, under-counting a stale read.
_READS = frozenset(
    {"SELECT", "SHOW", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "SET", "VALUES"}
)
_WORD = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*([A-Za-z]+)", re.DOTALL)
# A WITH query writes only when one of its parts is a data-modifying statement.
_DML = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b(?!\s+OF\b)", re.IGNORECASE)
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b", re.IGNORECASE)


def writes(statement: str) -> bool:
    """Whether SQL ``statement`` may write (its first keyword; a ``WITH``'s parts)."""
    match = _WORD.match(statement)
    if match is None:
        return True
    word = match.group(1).upper()
    if word == "WITH":
        return bool(_DML.search(_LOCKING.sub(" ", statement)))
    return word not in _READS


def mark_written(session: AsyncSession | Session) -> None:
    """Say that ``session`` wrote, for writes the driver makes directly (COPY)."""
    session.info[_WROTE] = True


def watch_writes(session: AsyncSession) -> None:
    """Watch ``session`` for writes (before its transaction begins), whatever its maker says."""
    session.info[_WATCH] = True


def wrote(session: AsyncSession) -> bool:
    """Whether a watched ``session`` wrote anything."""
    return bool(session.info.get(_WROTE))


def connected(session: AsyncSession) -> bool:
    """Whether ``session`` began a transaction on a connection (it did connect)."""
    return bool(session.info.get(_CONNECTED))


@event.listens_for(Session, "after_begin")
def _began(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    info = session.info
    info[_CONNECTED] = True
    if info.get(_WATCH) and not info.get(_WROTE):

        def executed(conn: Connection, statement: str, context: Any) -> None:
            if not info.get(_WROTE) and writes(statement):
                info[_WROTE] = True

        # On this connection only (a new Connection per transaction of the session).
        event.listen(connection, "after_cursor_execute", cursor_listener(executed))
