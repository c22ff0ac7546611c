"""What a constraint is, by name, from the models: for errors that name tables and columns.

PostgreSQL reports a violated constraint by name (and its table); the columns it covers and,
for a foreign key, the table it points to are in the models' metadata (asyncdal's, and a
service's own models on :class:`asyncdal.Base`). Looking them up there lets an error say which
columns and which referenced table without parsing the server's DETAIL, which quotes values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.schema import ColumnCollectionConstraint, ForeignKeyConstraint

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
