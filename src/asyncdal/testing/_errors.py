"""The test helpers' own error."""

from __future__ import annotations

from asyncdal import AsyncDALError

__all__ = ["EmbeddedPostgresError"]


class EmbeddedPostgresError(AsyncDALError, RuntimeError):
    """The throwaway local PostgreSQL server could not be found, started or stopped."""
