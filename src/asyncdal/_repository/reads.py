"""The read half of a repository: what it knows of its model, and its queries.

:class:`ReadRepository` checks the allowlists once, when a subclass is defined, and offers
``get``, ``get_many``, ``list`` (offset and keyset pages), ``count``, ``exists`` and ``stream``.
:class:`~asyncdal.Repository` adds the writes.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    inspect,
    literal,
    select,
    tuple_,
)

from asyncdal._base import Base
from asyncdal._checks import check_limit, check_offset
from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import InvalidQueryError, InvalidTypeError, NotFoundError
from asyncdal._repository.filters import SortKey, WhereSpec, parse_order, parse_where
from asyncdal._repository.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    keyset_condition,
)
from asyncdal._repository.values import Check, any_of, check_keys, checker_for, describe
from asyncdal._session import DALSession

__all__ = ["M", "ReadRepository"]

M = TypeVar("M", bound=Base)

# Composite keys go as (a, b) IN ((..), ..) with one parameter per column and key: batches
# stay far below the protocol's 32,767 parameters.
_TUPLES_PER_QUERY = 5_000


class ReadRepository(Generic[M]):
    """The read half of :class:`~asyncdal.Repository`: a model, its allowlists, its queries.

    See :class:`~asyncdal.Repository` for the attributes a subclass sets; a repository that
    must never write can subclass this instead.
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
    _checks: ClassVar[dict[str, Check]]
    _pk: ClassVar[tuple[Column[Any], ...]]
    _pk_checks: ClassVar[tuple[Check, ...]]
    _dal_lookup: ClassVar[_PrimaryKeyLookup]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Allowlists are checked once, when the class is defined, not on every call.
        super().__init_subclass__(**kwargs)
        if "model" not in cls.__dict__:
            return
        mapper = inspect(cls.model)
        table = cast(Table, cls.model.__table__)
        cls._columns = {attr.key: table.c[attr.columns[0].key] for attr in mapper.column_attrs}
        cls._pk = tuple(table.primary_key.columns)
        name = cls.model.__name__
        # One value check per column, from its type: every value written or looked up
        # passes through them before any SQL is sent.
        cls._checks = {
            key: checker_for(column, f"{name}.{key}") for key, column in cls._columns.items()
        }
        cls._pk_checks = tuple(checker_for(c, f"{name}.{c.key}") for c in cls._pk)
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

    def __init__(self, session: DALSession) -> None:
        """Work in ``session``; the repository holds no other state.

        ``session`` is a :class:`DALSession`, as ``db.session()``, ``db.read()``,
        ``db.transaction()`` and ``db.gather()`` hand out: its calls map driver errors to the
        layer's exceptions and refuse a second task. Anything else (a plain ``AsyncSession``,
        whose errors would reach the caller raw) is an :class:`InvalidTypeError`.
        """
        if not isinstance(session, DALSession):
            raise InvalidTypeError(
                f"{type(self).__name__} takes the DALSession that db.session(), db.read(), "
                f"db.transaction() or db.gather() hands out, got {type(session).__name__}: "
                "a plain AsyncSession neither maps driver errors to the layer's exceptions "
                "nor refuses a second task (build sessions with db.sessionmaker, not your own "
                "async_sessionmaker)"
            )
        self.session = session

    # -- reads -------------------------------------------------------------------------------

    async def get(self, id: Any) -> M:
        """The row with primary key ``id`` (a tuple for composite keys); else NotFoundError.

        An object already in the session costs no query (it is ``session.get``'s, refreshed
        if expired). Otherwise one query, from a statement built once per repository class:
        SQLAlchemy then reuses its cache key instead of computing it for every lookup, which
        is most of what ``session.get`` spends in Python before the query is sent.
        """
        ident = self._identity(id)
        session = self.session
        lookup = self._lookup()
        obj: M | None
        if lookup.mapper.identity_key_from_primary_key(ident) in session.identity_map:
            obj = await session.get(self.model, ident)
        else:
            result = await session.execute(lookup.statement, lookup.parameters(ident))
            rows = result.unique() if lookup.unique else result
            obj = cast("M | None", rows.scalar_one_or_none())
        if obj is None:
            raise NotFoundError(self.model.__name__, id)
        return obj

    async def get_many(self, ids: Iterable[Any]) -> builtins.list[M]:
        """The rows whose primary keys are in ``ids``, in the order of ``ids``.

        Missing ids are skipped (compare lengths to detect them); duplicates are returned once.
        Up to ``MAX_KEYS`` (100,000) ids in one call; with a single-column key they travel as
        one array parameter, so the list's length never meets the protocol's parameter limit.
        """
        keys = check_keys(ids, f"{self.model.__name__} get_many")
        for key in keys:
            self._identity(key)
        wanted = builtins.list(dict.fromkeys(keys))
        if not wanted:
            return []
        rows: builtins.list[M] = []
        if len(self._pk) == 1:
            stmt = select(self.model).where(any_of(self._pk[0], wanted))
            rows.extend((await self.session.scalars(stmt)).all())
        else:
            for start in range(0, len(wanted), _TUPLES_PER_QUERY):
                chunk = wanted[start : start + _TUPLES_PER_QUERY]
                stmt = select(self.model).where(tuple_(*self._pk).in_(chunk))
                rows.extend((await self.session.scalars(stmt)).all())
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
        return int(await self.session.scalar(stmt) or 0)

    async def exists(self, where: WhereSpec = None) -> bool:
        """Whether any row matches ``where`` (same rules as :meth:`list`)."""
        conditions = parse_where(where, self._columns, self.filter_fields)
        probe = select(literal(1)).select_from(self.model).where(*conditions).limit(1)
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

    # -- helpers -----------------------------------------------------------------------------

    def _select(
        self, where: WhereSpec, order_by: str | Sequence[str] | None
    ) -> tuple[Select[M], builtins.list[SortKey]]:
        conditions = parse_where(where, self._columns, self.filter_fields)
        keys = parse_order(order_by, self._columns, self.sort_fields, [c.key for c in self._pk])
        ordering = [key.column.desc() if key.descending else key.column.asc() for key in keys]
        return select(self.model).where(*conditions).order_by(*ordering), keys

    @classmethod
    def _lookup(cls) -> _PrimaryKeyLookup:
        """The primary-key lookup of :meth:`get`, built on the first call (mappers configured)."""
        lookup = cls.__dict__.get("_dal_lookup")
        if lookup is None:
            lookup = _PrimaryKeyLookup(cls.model, cls._pk)
            cls._dal_lookup = lookup
        return cast(_PrimaryKeyLookup, lookup)

    def _identity(self, id: Any) -> tuple[Any, ...]:
        """``id`` as a tuple of key values, each checked against its column."""
        ident = id if isinstance(id, tuple) else (id,)
        if len(ident) != len(self._pk):
            raise InvalidQueryError(
                f"{self.model.__name__} has a primary key of {len(self._pk)} column(s), "
                f"got {describe(id)}"
            )
        for check, value in zip(self._pk_checks, ident, strict=True):
            check(value)
        return ident

    def _pk_where(self, id: Any) -> builtins.list[ColumnElement[bool]]:
        ident = self._identity(id)
        return [column == value for column, value in zip(self._pk, ident, strict=True)]

    def _key(self, obj: M) -> Any:
        values = tuple(getattr(obj, column.key) for column in self._pk)
        return values[0] if len(values) == 1 else values


class _PrimaryKeyLookup:
    """``SELECT <model> WHERE <primary key> = <parameters>``: one statement object, reused.

    Reusing the statement lets SQLAlchemy memoize its cache key; ``session.get`` builds a new
    statement, and computes its key, on every call.
    """

    __slots__ = ("mapper", "names", "statement", "unique")

    def __init__(self, model: type[Base], pk: tuple[Column[Any], ...]) -> None:
        self.mapper = inspect(model)
        self.names = tuple(f"asyncdal_pk_{i}" for i in range(len(pk)))
        self.statement = select(model).where(
            *(column == bindparam(name) for column, name in zip(pk, self.names, strict=True))
        )
        # Joined eager loads of a collection repeat the row: the ORM wants them made unique.
        # (lazy=False is the old spelling of lazy="joined".)
        self.unique = any(
            rel.uselist and rel.lazy in ("joined", False) for rel in self.mapper.relationships
        )

    def parameters(self, ident: tuple[Any, ...]) -> dict[str, Any]:
        """The statement's parameters for the key values ``ident``."""
        return dict(zip(self.names, ident, strict=True))
