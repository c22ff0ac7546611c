"""The service's fixtures: asyncdal's plugin, with the service's own migrations added."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest_asyncio

import asyncdal

SERVICE = Path(__file__).resolve().parents[1]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def migrated_url(database_url: str) -> str:
    """asyncdal's schema first (the service's tables reference it), then the service's own."""
    await asyncdal.upgrade(database_url)
    alembic = [sys.executable, "-m", "alembic", "-c", str(SERVICE / "alembic.ini")]
    await asyncio.to_thread(
        subprocess.run,
        [*alembic, "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
    )
    return database_url
