"""The generic :class:`Repository`: typed CRUD, filtering, pagination, upsert and streaming."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast, overload

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    inspect,
    literal,
    select,
    tuple_,
)
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._base import Base
from asyncdal._checks import check_limit, check_offset
from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import InvalidQueryError, NotFoundError
from asyncdal._repository.bulk import copy_rows
from asyncdal._repository.filters import SortKey, WhereSpec, parse_order, parse_where
from asyncdal._repository.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    keyset_condition,
)

__all__ = ["Repository"]

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
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

    model: type[M]
    filter_fields: ClassVar[frozenset[str]] = frozenset()
    sort_fields: ClassVar[frozenset[str]] = frozenset()
    upsert_keys: ClassVar[tuple[tuple[str, ...], ...]] = ()
    default_limit: ClassVar[int] = 50
    max_limit: ClassVar[int] = 1000
    copy_threshold: ClassVar[int] = 1000
    readonly_fields: ClassVar[frozenset[str]] = frozenset()

    _columns: ClassVar[dict[str, Column[Any]]]
    _pk: ClassVar[tuple[Column[Any], ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Allowlists are checked once, when the class is defined, not on every call.
        super().__init_subclass__(**kwargs)
        if "model" not in cls.__dict__:
            return
        mapper = inspect(cls.model)
        table = cast(Table, cls.model.__table__)
        cls._columns = {attr.key: table.c[attr.columns[0].key] for attr in mapper.column_attrs}
        cls._pk = tuple(table.primary_key.columns)
        for allowlist in ("filter_fields", "sort_fields"):
            unknown = getattr(cls, allowlist) - cls._columns.keys()
            if unknown:
                raise TypeError(f"{cls.__name__}.{allowlist}: not columns: {sorted(unknown)}")
        nullable = [name for name in cls.sort_fields if cls._columns[name].nullable]
        if nullable:
            raise TypeError(f"{cls.__name__}.sort_fields: keyset needs NOT NULL: {nullable}")
        unique = {frozenset(c.name for c in table.primary_key.columns)} | {
            frozenset(c.name for c in constraint.columns)
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
        }
        for key in cls.upsert_keys:
            if frozenset(key) not in unique:
                raise TypeError(f"{cls.__name__}.upsert_keys: no unique constraint on {key}")

    def __init__(self, session: AsyncSession) -> None:
        """Work in ``session``; the repository holds no other state."""
        self.session = session

    # -- reads -------------------------------------------------------------------------------

    async def get(self, id: Any) -> M:
        """The row with primary key ``id`` (a tuple for composite keys); else NotFoundError.

        One ``session.get`` and nothing more: an object already in the session costs no query.
        """
        with wrap_errors():
            obj = await self.session.get(self.model, id)
        if obj is None:
            raise NotFoundError(self.model.__name__, id)
        return obj

    async def get_many(self, ids: Iterable[Any]) -> builtins.list[M]:
        """The rows whose primary keys are in ``ids``, in the order of ``ids``.

        Missing ids are skipped (compare lengths to detect them); duplicates are returned once.
        """
        wanted = builtins.list(dict.fromkeys(ids))
        if not wanted:
            return []
        single = len(self._pk) == 1
        condition = self._pk[0].in_(wanted) if single else tuple_(*self._pk).in_(wanted)
        with wrap_errors():
            rows = (await self.session.scalars(select(self.model).where(condition))).all()
        by_key = {self._key(row): row for row in rows}
        return [by_key[i] for i in wanted if i in by_key]

    async def list(
        self,
        where: WhereSpec = None,
        *,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        cursor: str | None = None,
    ) -> Page[M]:
        """One page of rows matching ``where``, ordered by ``order_by``.

        Args:
            where: ``{"field": value, "field__op": value}`` or :class:`Filter` objects, on
                ``filter_fields`` only.
            order_by: sort keys from ``sort_fields``, ``"-name"`` for descending; the primary
                key breaks ties. Default: the primary key.
            limit: page size, 1 to ``max_limit`` (default ``default_limit``).
            offset: rows to skip (offset pagination); the page's ``next_offset`` continues.
            cursor: the ``next_cursor`` of the previous page (keyset pagination).

        Raises:
            InvalidQueryError: an unknown field, operator or sort key, a bad value or limit, a
                malformed cursor, or both ``offset`` and ``cursor``.
        """
        size = check_limit(self.default_limit if limit is None else limit, self.max_limit)
        if offset is not None and cursor is not None:
            raise InvalidQueryError("pass either offset= or cursor=, not both")
        stmt, keys = self._select(where, order_by)
        if cursor is not None:
            stmt = stmt.where(keyset_condition(keys, decode_cursor(cursor, keys)))
        if offset is not None:
            stmt = stmt.offset(check_offset(offset))
        with wrap_errors():
            rows = (await self.session.scalars(stmt.limit(size + 1))).all()
        items = builtins.list(rows[:size])
        more = len(rows) > size
        return Page(
            items,
            next_cursor=encode_cursor(keys, items[-1]) if more else None,
            next_offset=(offset + size) if more and offset is not None else None,
            limit=size,
        )

    async def count(self, where: WhereSpec = None) -> int:
        """How many rows match ``where`` (same rules as :meth:`list`)."""
        conditions = parse_where(where, self._columns, self.filter_fields)
        stmt = select(func.count()).select_from(self.model).where(*conditions)
        with wrap_errors():
            return int(await self.session.scalar(stmt) or 0)

    async def exists(self, where: WhereSpec = None) -> bool:
        """Whether any row matches ``where`` (same rules as :meth:`list`)."""
        conditions = parse_where(where, self._columns, self.filter_fields)
        probe = select(literal(1)).select_from(self.model).where(*conditions).limit(1)
        with wrap_errors():
            return bool(await self.session.scalar(select(probe.exists())))

    async def stream(
        self,
        where: WhereSpec = None,
        *,
        order_by: str | Sequence[str] | None = None,
        batch_size: int = 1000,
    ) -> AsyncGenerator[M, None]:
        """Iterate over every matching row through a server-side cursor.

        Rows arrive ``batch_size`` at a time, so memory stays flat for any result size. The
        session (and its connection) is busy until the iteration ends; to stop early, wrap it
        in ``contextlib.aclosing`` so the server-side cursor is closed at once.

        Example::

            async for user in users.stream({"verified": True}):
                ...
        """
        size = check_limit(batch_size, 100_000, name="batch_size")
        stmt, _ = self._select(where, order_by)
        with wrap_errors():
            result = await self.session.stream_scalars(stmt.execution_options(yield_per=size))
            try:
                async for obj in result:
                    yield obj
            finally:
                await result.close()

    # -- writes ------------------------------------------------------------------------------

    async def add(self, obj: M) -> M:
        """Insert ``obj`` now (a flush), so its id and server defaults are set; return it."""
        self.session.add(obj)
        with wrap_errors():
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
        """
        batch = builtins.list(rows)
        if not batch:
            return [] if returning else 0
        names = self._writable(batch[0], "add_many")
        width = len(names)
        # Same length here, and every key present (checked as the rows are read), means the
        # same keys: cheaper than comparing key sets, which shows on 100k-row batches.
        odd = next((row for row in batch if len(row) != width), None)
        if odd is not None:
            raise self._mixed_keys(names, odd)
        with wrap_errors():
            if returning:
                stmt = insert(self.model).returning(self.model, sort_by_parameter_order=True)
                return builtins.list((await self.session.scalars(stmt, batch)).all())
            if len(batch) >= self.copy_threshold:
                table = cast(Table, self.model.__table__)
                columns = {name: self._columns[name].name for name in sorted(names)}
                try:
                    return await copy_rows(self.session, table, columns, batch)
                except KeyError:
                    odd = next(row for row in batch if row.keys() != names)
                    raise self._mixed_keys(names, odd) from None
            odd = next((row for row in batch if row.keys() != names), None)
            if odd is not None:
                raise self._mixed_keys(names, odd)
            await self.session.execute(insert(self.model), batch)
        return len(batch)

    async def update(self, id: Any, /, **values: Any) -> M:
        """Set ``values`` on the row with primary key ``id`` in one ``UPDATE ... RETURNING``.

        Returns the updated object (also refreshed in the session); NotFoundError if no row.
        """
        if not values:
            raise InvalidQueryError("update: no values given")
        self._writable(values, "update", primary_key_too=True)
        stmt = (
            sa_update(self.model)
            .where(*self._pk_where(id))
            .values(**values)
            .returning(self.model)
            .execution_options(populate_existing=True)
        )
        with wrap_errors():
            obj = (await self.session.scalars(stmt)).one_or_none()
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
        if not names.isdisjoint(self.readonly_fields):
            raise InvalidQueryError(
                f"upsert: {sorted(names & self.readonly_fields)} are maintained by the "
                f"repository and cannot be written; read-only: {sorted(self.readonly_fields)}"
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

    # -- helpers -----------------------------------------------------------------------------

    def _select(
        self, where: WhereSpec, order_by: str | Sequence[str] | None
    ) -> tuple[Select[M], builtins.list[SortKey]]:
        conditions = parse_where(where, self._columns, self.filter_fields)
        keys = parse_order(order_by, self._columns, self.sort_fields, [c.key for c in self._pk])
        ordering = [key.column.desc() if key.descending else key.column.asc() for key in keys]
        return select(self.model).where(*conditions).order_by(*ordering), keys

    def _pk_where(self, id: Any) -> builtins.list[ColumnElement[bool]]:
        ident = id if isinstance(id, tuple) else (id,)
        if len(ident) != len(self._pk):
            raise InvalidQueryError(
                f"{self.model.__name__} has a primary key of {len(self._pk)} column(s), got {id!r}"
            )
        return [column == value for column, value in zip(self._pk, ident, strict=True)]

    def _key(self, obj: M) -> Any:
        values = tuple(getattr(obj, column.key) for column in self._pk)
        return values[0] if len(values) == 1 else values

    @staticmethod
    def _mixed_keys(names: frozenset[str], row: Mapping[str, Any]) -> InvalidQueryError:
        return InvalidQueryError(
            f"add_many: every row needs the same keys; expected {sorted(names)}, "
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
            frozen = self.readonly_fields | {column.key for column in self._pk}
            if not names.isdisjoint(frozen):
                raise InvalidQueryError(
                    f"{what}: {sorted(names & frozen)} cannot be written; read-only: "
                    f"{sorted(frozen)}"
                )
        return names
