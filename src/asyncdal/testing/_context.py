"""The session factories write into: set by the plugin's ``session`` fixture (or by you)."""

from __future__ import annotations

from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["current_session"]

#: The session :mod:`asyncdal.testing.factories` add rows to (the running test's).
current_session: ContextVar[AsyncSession] = ContextVar("current_session")
