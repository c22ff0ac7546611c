"""The layer's per-statement hooks, on SQLAlchemy's public cursor-execute events.

``before_cursor_execute`` and ``after_cursor_execute`` call a listener with six arguments; the
layer's hooks (statement spans, the slow-query log, write detection) use three of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

__all__ = ["StatementHook", "cursor_listener"]

#: ``hook(connection, statement, execution_context)``: the statement as sent, with its
#: placeholders; the context is ``None`` for a statement run outside one.
StatementHook = Callable[[Connection, str, Any], None]


def cursor_listener(hook: StatementHook) -> Callable[..., None]:
    """``hook`` as a listener for ``before_cursor_execute`` or ``after_cursor_execute``.

    Pass the returned listener to ``event.listen`` (and the same object to ``event.remove``).
    """

    def listener(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        hook(conn, statement, context)

    return listener
