"""The session class the layer hands out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["DALSession"]


class DALSession(AsyncSession):
    """An ``AsyncSession`` as handed out by :class:`Database`.

    It behaves exactly like SQLAlchemy's ``AsyncSession``.
    """
