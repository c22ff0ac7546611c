"""What a constraint is, by name, from the models: for errors that name tables and columns.

PostgreSQL reports a violated constraint by name (and its table); the columns it covers (for a
CHECK written as SQL text, the columns the text names) and, for a foreign key, the table it
points to are in the models' metadata (asyncdal's, and a service's own models on
:class:`asyncdal.Base`). Looking them up there lets an error say which columns and which
referenced table without parsing the server's DETAIL, which quotes values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy.schema import CheckConstraint, ColumnCollectionConstraint, ForeignKeyConstraint

from asyncdal._base import Base

__all__ = ["ConstraintInfo", "describe_constraint"]


@dataclass(frozen=True)
class ConstraintInfo:
    """The columns of one named constraint, and for a foreign key what it references."""

    table: str
    columns: tuple[str, ...]
    referred_table: str | None = None
    referred_columns: tuple[str, ...] = ()


def describe_constraint(name: str) -> ConstraintInfo | None:
    """The constraint called ``name`` on a table of ``Base.metadata``, or ``None``.

    Looked up on demand (an error path): the metadata grows as models are imported.
    """
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if constraint.name != name or not isinstance(constraint, ColumnCollectionConstraint):
                continue
            columns = tuple(column.name for column in constraint.columns)
            if not columns and isinstance(constraint, CheckConstraint):
                columns = _checked_columns(table, str(constraint.sqltext))
            if isinstance(constraint, ForeignKeyConstraint):
                referred = [element.column for element in constraint.elements]
                return ConstraintInfo(
                    table.name,
                    columns,
                    referred[0].table.name if referred else None,
                    tuple(column.name for column in referred),
                )
            return ConstraintInfo(table.name, columns)
    return None


# A CHECK given as SQL text (``"stock >= 0"``) has no columns in the metadata: they are the
# table's columns its text names, outside string literals.
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENTIFIER = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')


def _checked_columns(table: Table, sql: str) -> tuple[str, ...]:
    named = {
        quoted.replace('""', '"') if quoted else bare.lower()
        for quoted, bare in _IDENTIFIER.findall(_LITERAL.sub(" ", sql))
    }
    return tuple(column.name for column in table.columns if column.name in named)
