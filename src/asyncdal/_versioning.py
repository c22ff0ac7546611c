"""Name the row when an ORM flush loses to a concurrent write (optimistic locking).

SQLAlchemy's ``StaleDataError`` says how many rows an ``UPDATE ... WHERE version = ...``
matched, not which object it was about. :class:`VersionCheckingSession`, the sync session under
every :class:`DALSession`, notes the versioned objects a flush is about to write, and hangs them
on the error, so the layer's :class:`StaleWriteError` can say "Product 42" instead of
"products: 0 rows matched".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from asyncdal._errors import StaleWriteError

__all__ = ["VersionCheckingSession", "stale_write_error"]

# The attribute the noted rows travel on: (model name, key, version loaded).
_ROWS = "asyncdal_rows"


class VersionCheckingSession(Session):
    """A ``Session`` that names the versioned rows of a flush that hit ``StaleDataError``."""

    #: The versioned rows the current (or last) flush set out to write.
    _dal_flushing_rows: Sequence[tuple[str, object, int | None]] = ()

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        """Flush as usual; a stale versioned row raises ``StaleDataError`` naming its rows."""
        try:
            super().flush(objects)
        except StaleDataError as exc:
            setattr(exc, _ROWS, self._dal_flushing_rows)
            raise


@event.listens_for(VersionCheckingSession, "before_flush")
def _note_versioned_rows(session: VersionCheckingSession, _context: Any, _instances: Any) -> None:
    # Only a flush with something to write gets here: an autoflush before every query of a
    # clean session (the common case) costs no scan of the dirty rows.
    session._dal_flushing_rows = _versioned(session)


def _versioned(session: Session) -> list[tuple[str, object, int | None]]:
    rows: list[tuple[str, object, int | None]] = []
    for obj in [*session.dirty, *session.deleted]:
        state = inspect(obj)
        column = state.mapper.version_id_col
        if column is None or state.identity is None:
            continue
        key = state.identity[0] if len(state.identity) == 1 else state.identity
        # The loaded value from the instance dict: getattr could emit a load mid-flush.
        version = state.dict.get(state.mapper.get_property_by_column(column).key)
        rows.append((type(obj).__name__, key, version))
    return rows


def stale_write_error(exc: StaleDataError) -> StaleWriteError:
    """The layer's error for ``exc``, naming the (first) versioned row of its flush."""
    rows: Sequence[tuple[str, object, int | None]] = getattr(exc, _ROWS, ())
    if not rows:
        return StaleWriteError("a row", None)
    model, key, version = rows[0]
    return StaleWriteError(model, key, expected_version=version)
