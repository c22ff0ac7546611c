"""Link rows that keep a counter exact: follows → ``follower_count``, likes → ``like_count``.

Adding or removing the link row and moving the counter happen in ONE statement: the
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (or ``DELETE ... RETURNING``) yields a row only
when this statement changed one, and the counter moves for exactly those rows. So the counter
equals the number of link rows whatever runs concurrently, without locks or retries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from asyncdal._base import Base
from asyncdal._error_mapping import wrap_errors

__all__ = ["link", "unlink"]


async def _apply(
    session: AsyncSession,
    change: Any,
    target: InstrumentedAttribute[int],
    counter: InstrumentedAttribute[int],
    delta: int,
) -> bool:
    """Run ``change`` (returning the counted row's id) and move ``counter`` by ``delta``."""
    changed = change.cte("changed")
    owner = counter.class_
    moved = (
        update(owner)
        .where(owner.id.in_(select(changed.c[target.key])))
        .values({counter.key: counter + delta})
        .returning(owner.id)
        .cte("moved")
    )
    with wrap_errors():
        count = await session.scalar(select(func.count()).select_from(changed).add_cte(moved))
    return bool(count)


async def link(
    session: AsyncSession,
    model: type[Base],
    values: dict[str, int],
    *,
    target: InstrumentedAttribute[int],
    counter: InstrumentedAttribute[int],
) -> bool:
    """Insert the link row ``values`` unless it exists; ``True`` (and counter + 1) if inserted."""
    change = insert(model).values(values).on_conflict_do_nothing().returning(target)
    return await _apply(session, change, target, counter, +1)


async def unlink(
    session: AsyncSession,
    model: type[Base],
    where: list[ColumnElement[bool]],
    *,
    target: InstrumentedAttribute[int],
    counter: InstrumentedAttribute[int],
) -> bool:
    """Delete the link row matching ``where``; ``True`` (and counter - 1) if one was deleted."""
    change = delete(model).where(*where).returning(target)
    return await _apply(session, change, target, counter, -1)
