"""Loading the demo dataset: generated in a worker thread, batch by batch, streamed into COPY.

:func:`load_dataset` writes the rows in one transaction (all or nothing, also on Ctrl-C), skips a
database that already holds data, then runs ``ANALYZE`` so the planner sees the new tables. Each
batch is generated off the event loop (``asyncio.to_thread``) while nothing else is held in
memory, so progress moves from the first batch, cancelling stops within one batch, and memory
does not grow with ``scale``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Table, func, select, text
from sqlalchemy.schema import AddConstraint, DropConstraint

from asyncdal._base import Base
from asyncdal._database import Database
from asyncdal._repository.bulk import copy_records
from asyncdal._session import DALSession
from asyncdal._versions import asyncdal_tables
from asyncdal.accounts import User
from asyncdal.commerce import Order, Product
from asyncdal.social import Hashtag, Post
from asyncdal.testing._generate import COLUMNS, Batch, generate_batches

__all__ = ["LoadResult", "Progress", "load_dataset", "table_counts"]

#: Called as ``progress(table, done, total)`` after each batch: ``done`` of ``total`` steps.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LoadResult:
    """What :func:`seed` did: ``skipped`` when the database already held data."""

    skipped: bool
    counts: dict[str, int]
    reason: str = ""


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _our_tables() -> list[Table]:
    # asyncdal's tables only: a service's models on the same Base are not the demo's.
    ours = asyncdal_tables()
    return [table for table in Base.metadata.sorted_tables if table.name in ours]


async def table_counts(db: Database) -> dict[str, int]:
    """Rows per asyncdal table (exact ``count(*)``)."""
    async with db.session() as session:
        counts = {}
        for table in _our_tables():
            counts[table.name] = int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
        return counts


async def _reset_identities(session: DALSession) -> None:
    """Move each identity past the ids the dataset assigned, so later inserts do not clash."""
    for model in (User, Hashtag, Post, Product, Order):
        table = _table(model)
        await session.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery(),
                    False,
                )
            )
        )


def _next_batch(batches: Iterator[Batch]) -> asyncio.Future[Batch | None]:
    return asyncio.ensure_future(asyncio.to_thread(next, batches, None))


async def load_dataset(
    db: Database,
    scale: float = 1.0,
    *,
    random_seed: int = 42,
    progress: Progress | None = None,
    chunk: int = 5_000,
) -> LoadResult:
    """Write the demo dataset into ``db`` (migrated, empty) and ``ANALYZE`` it.

    Skips (``LoadResult.skipped``) when any asyncdal table already has rows: running it twice
    never duplicates data. Everything is written in one transaction; ``chunk`` rows at most
    are generated (in a worker thread) and copied at a time.
    """
    counts = await table_counts(db)
    if any(counts.values()):
        busy = ", ".join(f"{name}={n}" for name, n in counts.items() if n)
        return LoadResult(True, counts, f"the database already has data ({busy})")
    batches = generate_batches(scale, random_seed=random_seed, batch=chunk)
    written: Counter[str] = Counter()
    foreign_keys = [fk for t in _our_tables() for fk in t.foreign_key_constraints]
    async with db.session() as session:
        connection = await session.connection()
        # Checking foreign keys row by row (a trigger per row and key) costs two thirds of the
        # load; re-adding the constraints afterwards validates every row in one join per key.
        # Same transaction: nobody sees the tables without their constraints. It also lets the
        # batches come in any order (follows before the users they count).
        for fk in foreign_keys:
            await connection.execute(DropConstraint(fk))
        # Each batch is made off the loop (the loop stays responsive: Ctrl-C, progress), the
        # next one while the server copies this one. Cancelled, the worker finishes its batch
        # and nothing asks it for another.
        pending = _next_batch(batches)
        try:
            while (batch := await pending) is not None:
                pending = _next_batch(batches)
                table = _table(batch.model)
                await copy_records(session, table, COLUMNS[batch.model], batch.rows)
                written[table.name] += len(batch.rows)
                if progress is not None:
                    progress(table.name, batch.done, batch.total)
        finally:
            pending.cancel()
        for fk in foreign_keys:
            await connection.execute(AddConstraint(fk))
        await _reset_identities(session)
    async with db.engine.connect() as conn:
        # ANALYZE is not a query built from input: no parameters, fixed text.
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return LoadResult(False, {_table(m).name: written[_table(m).name] for m in COLUMNS})
