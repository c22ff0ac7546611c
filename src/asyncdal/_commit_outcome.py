"""Whether a transaction committed when the answer to its COMMIT was lost.

A failover ends the connections of the old primary, and a COMMIT in flight then fails without
telling whether it took effect: on a Patroni switchover in synchronous mode the COMMIT record is
already written and shipped while the backend waits for the standby's confirmation. Running
``fn`` again could write twice; giving up turns a switchover into errors. So, when the database
may fail over (``Settings.failover_timeout`` > 0), ``db.transaction`` takes a marker just before
COMMIT, in one round trip and only after the unit of work wrote: its transaction id, the WAL
insert position and the server's start time. When the COMMIT's answer is lost, a new connection
(to the new primary, once there is one) asks what became of that transaction id.

The answer is trusted only when the transaction id means the same transaction there:

- the **same server** (same postmaster start time): nothing has reused the id;
- a **promoted standby** whose recovery replayed past the marker's WAL position
  (``pg_last_wal_replay_lsn()``): it saw the transaction's records, so it never handed its id
  out again.

A promoted standby whose recovery ended *before* the marker never saw the COMMIT: on the
surviving history the transaction did not happen, and running ``fn`` again is safe. Anything
else (a server that never was in recovery, an id too old to know) stays unknown: the caller is
told so. The one case this cannot see is two failovers within one check (a standby of the
second new primary replaying past the marker on the other history).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from asyncdal._errors import AsyncDALError, DatabaseUnavailableError
from asyncdal._session import DALSession

__all__ = ["CommitMarker", "Outcome", "mark_commit", "outcome_of"]

_MARK = text(
    "SELECT pg_current_xact_id_if_assigned()::text, pg_current_wal_insert_lsn()::text, "
    "pg_postmaster_start_time()"
)
# One round trip on the new connection. The id's status is asked only where it means the same
# transaction (the same server, or a standby that replayed past the marker). "finished": no
# longer running there (a COMMIT still waiting for a synchronous standby is marked committed
# before it is visible).
_CHECK = text(
    "WITH here AS (SELECT pg_postmaster_start_time() = CAST(:started AS timestamptz) AS same, "
    "pg_last_wal_replay_lsn() >= CAST(CAST(:lsn AS text) AS pg_lsn) AS replayed, "
    "CAST(CAST(:xid AS text) AS xid8) AS xid) "
    "SELECT same, replayed, "
    "CASE WHEN same OR replayed THEN pg_xact_status(xid) END, "
    "pg_visible_in_snapshot(xid, pg_current_snapshot()) FROM here"
)
#: Checks on a connection lost again (the new primary not up yet); each connect itself waits
#: through the failover (``failover_timeout``).
_CHECK_ATTEMPTS = 3
_POLL = 0.05
_MAX_POLL = 0.5


class Outcome(enum.Enum):
    """What became of a transaction whose COMMIT answer was lost."""

    COMMITTED = "committed"
    #: Not committed on the surviving history: running it again is safe.
    NOT_COMMITTED = "not committed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CommitMarker:
    """A transaction's identity, taken just before its COMMIT."""

    #: Its transaction id (``xid8`` as text); ``None``: it wrote nothing, there is nothing to lose.
    xid: str | None
    #: The WAL insert position before COMMIT: every record of the transaction precedes it.
    lsn: str
    #: The server's start time (tells the same server from another one).
    started: datetime


async def mark_commit(session: DALSession) -> CommitMarker:
    """The marker of ``session``'s transaction (one round trip, before COMMIT)."""
    row = (await session.execute(_MARK)).one()
    return CommitMarker(xid=row[0], lsn=row[1], started=row[2])


async def outcome_of(
    sessionmaker: async_sessionmaker[DALSession], marker: CommitMarker, *, until: float
) -> Outcome:
    """Ask a new connection what became of ``marker``'s transaction.

    A transaction still running there (its backend survived and waits for a synchronous
    standby) is asked again with backoff until the monotonic time ``until``; a connection
    error is tried again a few times. Either running out is :attr:`Outcome.UNKNOWN`.
    """
    if marker.xid is None:
        return Outcome.NOT_COMMITTED
    params = {"xid": marker.xid, "lsn": marker.lsn, "started": marker.started}
    lost = 0
    poll = _POLL
    while True:
        try:
            async with sessionmaker() as session:
                same_server, replayed, status, finished = (
                    await session.execute(_CHECK, params)
                ).one()
        except DatabaseUnavailableError:
            lost += 1
            if lost >= _CHECK_ATTEMPTS:
                return Outcome.UNKNOWN
        except AsyncDALError:
            # An id this server never handed out ("in the future": a transaction that wrote
            # only temporary tables leaves no WAL record of its id before COMMIT).
            return Outcome.UNKNOWN
        else:
            if not same_server and replayed is False:
                # Promoted before the COMMIT reached it: not on the surviving history.
                return Outcome.NOT_COMMITTED
            if not (same_server or replayed) or status is None:
                return Outcome.UNKNOWN
            if status == "aborted":
                return Outcome.NOT_COMMITTED
            if status == "committed" and finished:
                return Outcome.COMMITTED
        if time.monotonic() + poll > until:
            return Outcome.UNKNOWN
        await asyncio.sleep(poll)
        poll = min(poll * 2, _MAX_POLL)
