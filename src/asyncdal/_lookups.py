"""Coalesced point lookups: ``db.get(Model, pk)`` calls of one moment share one query.

Every ``db.get`` for a model that is asked in the same event-loop iteration joins one batch;
the batch's query (``WHERE pk = ANY($1)``, one prepared statement whatever the batch size) runs
on the read path in the next iteration, after every caller of this one has asked. Each caller
then gets the row of its own key, or ``None`` (``db.get`` raises :class:`NotFoundError`). It is
the DataLoader idea without its cache: nothing is kept once a batch is answered, so no result
is older than the caller's own request.

- A batch holds at most ``max_batch`` keys; more callers start another batch.
- A caller that is cancelled leaves its batch; the others are answered as usual. When every
  caller of a batch has left, its query is not run (or is cancelled if it is running).
- An error of the query (the server gone, a timeout) is raised to every caller of that batch.
- Keys are checked against the primary key's column (the repositories' value checks) before
  they join, so a caller's bad key (a string for an integer key, an integer out of range)
  fails that caller alone.
- Callers of one batch asking for the same key get the same object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Column, Select, Table, bindparam, inspect, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from asyncdal._errors import InvalidQueryError
from asyncdal._read_retry import retry_lost_reads
from asyncdal._repository.values import checker_for
from asyncdal._session import DALSession

__all__ = ["MAX_BATCH", "Lookups", "ModelKeys"]

#: Keys per coalesced query: large enough to absorb a burst, small enough to stay one packet
#: of parameters and a quick index scan.
MAX_BATCH = 500

OpenRead = Callable[[], AbstractAsyncContextManager[DALSession]]


@dataclass(frozen=True)
class ModelKeys:
    """What a lookup needs to know about one model's primary key (built once per model)."""

    model: type[Any]
    columns: tuple[Column[Any], ...]
    check_one: Callable[[Any], Any]
    statement: Select[Any] | None  # the coalesced one; None for composite keys

    @classmethod
    def of(cls, model: type[Any]) -> ModelKeys:
        """The key description of ``model``, a mapped class."""
        try:
            mapper = inspect(model)
        except Exception:
            raise InvalidQueryError(f"{model!r} is not a mapped model class") from None
        table = cast(Table, mapper.local_table)
        columns = tuple(table.primary_key.columns)
        statement = None
        if len(columns) == 1:
            (column,) = columns
            keys = bindparam("keys", type_=ARRAY(column.type))
            statement = select(model).where(column == keys.any_())
        checks = [_checker(model.__name__, c) for c in columns]
        if len(checks) == 1:
            check_one = checks[0]
        else:

            def check_one(key: Any) -> Any:
                if not isinstance(key, tuple) or len(key) != len(checks):
                    raise InvalidQueryError(
                        f"{model.__name__} has a primary key of {len(checks)} columns: pass a "
                        f"tuple of {len(checks)} values, got {type(key).__name__}"
                    )
                return tuple(check(v) for check, v in zip(checks, key, strict=True))

        return cls(model, columns, check_one, statement)

    def key_of(self, obj: Any) -> Any:
        """The primary key of a loaded object, as callers pass it."""
        values = tuple(getattr(obj, column.key) for column in self.columns)
        return values[0] if len(values) == 1 else values

    def select_many(self, keys: Sequence[Any]) -> tuple[Select[Any], dict[str, Any] | None]:
        """The statement and parameters that load the rows of ``keys``."""
        if self.statement is not None:
            return self.statement, {"keys": list(keys)}
        return select(self.model).where(tuple_(*self.columns).in_(list(keys))), None


def _checker(model: str, column: Column[Any]) -> Callable[[Any], Any]:
    """The repositories' value check for ``column`` (see ``values``), returning the value."""
    check = checker_for(column, f"{model}.{column.key}")

    def checked(value: Any) -> Any:
        check(value)
        return value

    return checked


@dataclass
class _Batch:
    keys: ModelKeys
    waiters: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def abandoned(self) -> bool:
        return all(future.done() for _, future in self.waiters)


class Lookups:
    """The coalescer of one :class:`Database` (see the module docstring)."""

    def __init__(self, open_read: OpenRead, *, max_batch: int = MAX_BATCH) -> None:
        """Batches are answered in sessions from ``open_read`` (the read path)."""
        self._open_read = open_read
        self.max_batch = max_batch
        self._models: dict[type[Any], ModelKeys] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[type[Any], _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()

    def keys_of(self, model: type[Any]) -> ModelKeys:
        """The (cached) key description of ``model``."""
        keys = self._models.get(model)
        if keys is None:
            keys = self._models[model] = ModelKeys.of(model)
        return keys

    async def get(self, model: type[Any], key: Any) -> Any:
        """The object of ``model`` with primary key ``key``, or ``None``; coalesced."""
        keys = self.keys_of(model)
        key = keys.check_one(key)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # asyncio objects belong to one loop
            self._loop, self._open = loop, {}
        batch = self._open.get(model)
        if batch is None:
            batch = self._open[model] = _Batch(keys)
            loop.call_soon(self._close_batch, model, batch)
        future: asyncio.Future[Any] = loop.create_future()
        batch.waiters.append((key, future))
        if len(batch.waiters) >= self.max_batch:
            self._close_batch(model, batch)  # full: later callers start a new one
        try:
            return await future
        except asyncio.CancelledError:
            if batch.task is not None and batch.abandoned():
                batch.task.cancel()  # nobody is left to read the answer
            raise

    async def get_many(self, model: type[Any], keys: Sequence[Any]) -> list[Any]:
        """The objects of ``keys`` in their order, each once; missing keys are skipped."""
        info = self.keys_of(model)
        wanted = list(dict.fromkeys(info.check_one(key) for key in keys))
        found = await retry_lost_reads(lambda: self._fetch(info, wanted)) if wanted else {}
        return [found[key] for key in wanted if key in found]

    async def _fetch(self, keys: ModelKeys, wanted: list[Any]) -> dict[Any, Any]:
        """The objects of ``wanted`` by key, in one session (a retry opens a new one)."""
        found: dict[Any, Any] = {}
        async with self._open_read() as session:
            for start in range(0, len(wanted), self.max_batch):
                stmt, params = keys.select_many(wanted[start : start + self.max_batch])
                for obj in (await session.scalars(stmt, params)).all():
                    found[keys.key_of(obj)] = obj
        return found

    def _close_batch(self, model: type[Any], batch: _Batch) -> None:
        """Stop ``batch`` taking callers and start its query (unless everyone left)."""
        if batch.task is not None or self._open.get(model) is not batch:
            return  # already closed (it filled up before this callback ran)
        del self._open[model]
        if batch.abandoned():
            return
        batch.task = asyncio.get_running_loop().create_task(self._answer(batch))
        self._running.add(batch.task)  # a reference, so the task is not collected mid-query
        batch.task.add_done_callback(self._running.discard)

    async def _answer(self, batch: _Batch) -> None:
        """Run the batch's query and hand each caller its row, or the query's error."""
        try:
            wanted = list(dict.fromkeys(key for key, future in batch.waiters if not future.done()))
            found = await retry_lost_reads(lambda: self._fetch(batch.keys, wanted))
        except BaseException as exc:
            for _, future in batch.waiters:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, future in batch.waiters:
            if not future.done():
                future.set_result(found.get(key))
