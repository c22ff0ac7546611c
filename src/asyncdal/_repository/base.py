"""The generic :class:`Repository`: the reads of :class:`ReadRepository`, plus the writes."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, cast, overload

from sqlalchemy import Column, ColumnElement, Table, delete, insert, inspect, select
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import (
    InvalidQueryError,
    InvalidTypeError,
    NotFoundError,
    StaleWriteError,
)
from asyncdal._repository.bulk import copy_checked
from asyncdal._repository.columns import CheckedRows, ColumnPlan, plan_for, with_converters
from asyncdal._repository.reads import M, ReadRepository
from asyncdal._repository.values import describe

__all__ = ["Repository"]


class Repository(ReadRepository[M]):
    """Typed data access for one model, over a session the caller owns.

    A repository never commits: it works inside the caller's unit of work
    (``async with db.session() as s``) or ``db.transaction(...)``. Subclasses set ``model``
    and their allowlists; names outside them are rejected with :class:`InvalidQueryError`.

    Attributes:
        model: the mapped class.
        filter_fields: fields callers may filter on.
        sort_fields: fields callers may order by (the primary key is always the tiebreaker).
        upsert_keys: column groups with a unique constraint that ``upsert(on=...)`` may use.
        default_limit, max_limit: page size when none is given, and the largest allowed.
        copy_threshold: ``add_many`` batches at least this large go through ``COPY``.
        readonly_fields: columns ``update`` and ``upsert`` refuse to write, because the
            repository maintains them (counters) or they identify the row (primary key).

    Example::

        class UserRepository(Repository[User]):
            model = User
            filter_fields = frozenset({"username", "follower_count"})
            sort_fields = frozenset({"username", "follower_count"})
    """

    # Columns the database writes on UPDATE (a trigger: version, updated_at): never callers.
    _maintained: ClassVar[frozenset[str]] = frozenset()
    _version: ClassVar[Column[Any] | None] = None
    _insert_plans: ClassVar[dict[str, ColumnPlan]]
    _copy_plans: ClassVar[dict[str, ColumnPlan]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model" not in cls.__dict__:
            return
        cls._maintained = frozenset(
            key for key, column in cls._columns.items() if column.server_onupdate is not None
        )
        version = inspect(cls.model).version_id_col
        cls._version = None if version is None else cast(Column[Any], version)
        # How add_many checks each column, on either path (see columns), made once.
        cls._insert_plans = cls._plans(server_judges=False)
        cls._copy_plans = cls._plans(server_judges=True)

    @classmethod
    def _plans(cls, *, server_judges: bool) -> dict[str, ColumnPlan]:
        name = cls.model.__name__
        return {
            key: plan_for(column, key, f"{name}.{key}", server_judges=server_judges)
            for key, column in cls._columns.items()
        }

    # -- writes ------------------------------------------------------------------------------

    async def create(self, **values: Any) -> M:
        """Insert one row from column values and return it, its id and server defaults set.

        Names must be columns of the model; generated keys and the columns the repository
        maintains (``readonly_fields``, e.g. counters) are refused, and every value is checked
        against its column, all before anything is sent.

        Example::

            ada = await UserRepository(s).create(username="ada", email="ada@example.org")
        """
        self._writable(values, "create")
        generated = (
            self.readonly_fields
            | self._maintained
            | {c.key for c in self._pk if c.identity is not None}
        )
        if not generated.isdisjoint(values):
            raise InvalidQueryError(
                f"create: {sorted(generated & values.keys())} are set by the database or the "
                f"repository and cannot be given"
            )
        self._check_values(values)
        return await self.add(self.model(**values))

    async def add(self, obj: M) -> M:
        """Insert ``obj`` now (a flush), so its id and server defaults are set; return it.

        Every column value set on ``obj`` is checked against its column first: a bad one is
        an :class:`InvalidQueryError` (or :class:`InvalidTypeError`) and nothing is sent.
        """
        if not isinstance(obj, self.model):
            raise InvalidTypeError(
                f"{type(self).__name__}.add: expected a {self.model.__name__}, "
                f"got {type(obj).__name__}"
            )
        state = obj.__dict__
        for key, check in self._checks.items():
            if key in state:
                check(state[key])
        self.session.add(obj)
        await self.session.flush()
        return obj

    @overload
    async def add_many(
        self, rows: Iterable[Mapping[str, Any]], *, returning: Literal[False] = False
    ) -> int: ...

    @overload
    async def add_many(
        self, rows: Iterable[Mapping[str, Any]], *, returning: Literal[True]
    ) -> builtins.list[M]: ...

    async def add_many(
        self, rows: Iterable[Mapping[str, Any]], *, returning: bool = False
    ) -> int | builtins.list[M]:
        """Insert many rows given as mappings of column name to value, all with the same keys.

        With ``returning=False`` (the default) it returns the number of rows, and batches of
        ``copy_threshold`` rows or more go through ``COPY`` (no ORM events, no Python-side
        defaults; server defaults apply). With ``returning=True`` it returns the new objects,
        ids set, in the order given (a multi-row ``INSERT ... RETURNING``).

        A bad row writes nothing, and the error names it (``add_many: rows[k]: ...``, also
        ``error.row_index`` and ``error.field``), never its values. An ``INSERT`` is sent only
        once every value passed the layer's checks. ``COPY`` leaves to the server what it
        checks anyway: text too long or a number out of its column's range is an
        :class:`InvalidQueryError`, a NULL in a NOT NULL column or a failed CHECK a
        :class:`CheckViolationError`, a duplicate a :class:`DuplicateError`, each naming the
        row (a foreign key is checked after the last row: no row is named). What the server
        would store silently (a float for money, NaN, digits past the scale) or the driver
        could not encode (a wrong type, NUL, a lone surrogate) is still refused by the layer.
        """
        batch = builtins.list(rows)
        if not batch:
            return [] if returning else 0
        if not isinstance(batch[0], Mapping):
            raise InvalidTypeError(
                f"add_many: rows[0]: expected a mapping of column names to values, "
                f"got {describe(batch[0])}"
            )
        names = self._writable(batch[0], "add_many")
        keys = sorted(names)
        if returning or len(batch) < self.copy_threshold:
            # Everything the layer knows is checked first: an INSERT cannot stop half-way, and
            # its errors would not say which row.
            self._rows(batch, keys, server_judges=False).check_all()
            with wrap_errors():
                if returning:
                    stmt = insert(self.model).returning(self.model, sort_by_parameter_order=True)
                    return builtins.list((await self.session.scalars(stmt, batch)).all())
                await self.session.execute(insert(self.model), batch)
            return len(batch)
        # COPY: checked as it streams (the server inserts while the next rows are checked),
        # only for what the server cannot judge; the server's own refusals name the row. A bad
        # row stops the COPY, which rolls back to its savepoint: nothing is written. The first
        # chunk is checked before any SQL.
        checked = self._rows(batch, keys, server_judges=True)
        checked.check_first()
        with wrap_errors():
            await copy_checked(self.session, cast(Table, self.model.__table__), checked)
        return len(batch)

    async def update(self, id: Any, /, *, expected_version: int | None = None, **values: Any) -> M:
        """Set ``values`` on the row with primary key ``id`` in one ``UPDATE ... RETURNING``.

        Returns the updated object (also refreshed in the session); NotFoundError if no row.

        ``expected_version`` (models with a version: products, users) makes the write
        conditional, for HTTP ``If-Match`` flows: the row is only updated if it is still at
        that version, in the same statement; otherwise :class:`StaleWriteError` says which
        version it is at now, and nothing is written.

        Example::

            product = await ProductRepository(s).update(
                7, price=Decimal("9.90"), expected_version=3
            )
        """
        if not values:
            raise InvalidQueryError("update: no values given")
        self._writable(values, "update", primary_key_too=True)
        self._check_values(values)
        where = self._pk_where(id)
        if expected_version is not None:
            where.append(self._version_is(expected_version))
        stmt = (
            sa_update(self.model)
            .where(*where)
            .values(**values)
            .returning(self.model)
            .execution_options(populate_existing=True)
        )
        with wrap_errors():
            obj = (await self.session.scalars(stmt)).one_or_none()
            if obj is None and self._version is not None and expected_version is not None:
                # Stale or gone: the version now tells which.
                current = await self.session.scalar(
                    select(self._version).where(*self._pk_where(id))
                )
                if current is not None:
                    raise StaleWriteError(
                        self.model.__name__,
                        id,
                        expected_version=expected_version,
                        current_version=current,
                    )
        if obj is None:
            raise NotFoundError(self.model.__name__, id)
        return obj

    async def delete(self, id: Any) -> None:
        """Delete the row with primary key ``id``; NotFoundError if there is none."""
        stmt = delete(self.model).where(*self._pk_where(id)).returning(*self._pk)
        with wrap_errors():
            deleted = (await self.session.execute(stmt)).first()
        if deleted is None:
            raise NotFoundError(self.model.__name__, id)

    async def upsert(
        self,
        values: Mapping[str, Any],
        *,
        on: str | Sequence[str],
        update: Sequence[str] | None = None,
    ) -> M:
        """Insert ``values``, or update the row that has the same ``on`` columns: atomically.

        One ``INSERT ... ON CONFLICT (on) DO UPDATE ... RETURNING`` statement, so concurrent
        upserts of the same key never fail with a duplicate. ``on`` must be one of the
        repository's ``upsert_keys``; ``update`` names the columns to overwrite on conflict
        (default: every given column outside ``on``).
        """
        key = (on,) if isinstance(on, str) else tuple(on)
        allowed = {frozenset(k): k for k in self.upsert_keys}
        if frozenset(key) not in allowed:
            raise InvalidQueryError(
                f"upsert: on={key!r} is not an allowed conflict key; "
                f"allowed: {[builtins.list(k) for k in self.upsert_keys]}"
            )
        names = self._writable(values, "upsert")
        self._check_values(values)
        readonly = self.readonly_fields | self._maintained
        if not names.isdisjoint(readonly):
            raise InvalidQueryError(
                f"upsert: {sorted(names & readonly)} are maintained by the repository or the "
                f"database and cannot be written; read-only: {sorted(readonly)}"
            )
        if not set(key) <= names:
            raise InvalidQueryError(f"upsert: values must include the conflict key {key!r}")
        overwrite = [n for n in names if n not in key] if update is None else builtins.list(update)
        unknown = set(overwrite) - names
        if unknown:
            raise InvalidQueryError(f"upsert: update= names columns not in values: {unknown}")
        stmt = pg_insert(self.model).values(dict(values))
        # With nothing to overwrite, rewriting the key itself still lets RETURNING see the row.
        set_ = {n: stmt.excluded[self._columns[n].name] for n in (overwrite or key)}
        stmt = stmt.on_conflict_do_update(
            index_elements=[self._columns[n].name for n in key], set_=set_
        )
        final = stmt.returning(self.model).execution_options(populate_existing=True)
        with wrap_errors():
            return (await self.session.scalars(final)).one()

    def _version_is(self, expected: object) -> ColumnElement[bool]:
        if self._version is None:
            raise InvalidQueryError(
                f"update: {self.model.__name__} has no version column, so expected_version "
                "cannot be checked"
            )
        if not isinstance(expected, int) or isinstance(expected, bool) or not 0 < expected < 2**31:
            raise InvalidQueryError(
                f"expected_version must be a positive integer, got {expected!r}"
            )
        return self._version == expected

    def _check_values(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self._checks[key](value)

    def _rows(
        self, batch: builtins.list[Mapping[str, Any]], keys: Sequence[str], *, server_judges: bool
    ) -> CheckedRows:
        """``batch`` as rows in the order of ``keys``, to check (and, for COPY, convert).

        ``server_judges``: COPY's depth of checks (see ``columns``); its converters are the
        bind processors of the session's dialect.
        """
        plans = self._copy_plans if server_judges else self._insert_plans
        chosen = [plans[key] for key in keys]
        if server_judges:
            dialect = self.session.get_bind().dialect
            chosen = with_converters(chosen, [self._columns[key] for key in keys], dialect)
        names = frozenset(keys)
        return CheckedRows(batch, chosen, "add_many", lambda row: self._mixed_keys(names, row))

    @staticmethod
    def _mixed_keys(names: frozenset[str], row: Mapping[str, Any]) -> InvalidQueryError:
        return InvalidQueryError(
            f"every row needs the same keys; expected {sorted(names)}, "
            f"got {sorted(map(str, row.keys()))}"
        )

    def _writable(
        self, values: Mapping[str, Any], what: str, *, primary_key_too: bool = False
    ) -> frozenset[str]:
        names = frozenset(values)
        unknown = names - self._columns.keys()
        if unknown:
            raise InvalidQueryError(
                f"{what}: unknown columns {sorted(map(str, unknown))} for "
                f"{self.model.__name__}; columns: {sorted(self._columns)}"
            )
        if primary_key_too:
            frozen = self.readonly_fields | self._maintained | {c.key for c in self._pk}
            if not names.isdisjoint(frozen):
                raise InvalidQueryError(
                    f"{what}: {sorted(names & frozen)} cannot be written; read-only: "
                    f"{sorted(frozen)}"
                )
        return names
