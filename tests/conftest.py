"""Test harness: the fixtures services get, from ``asyncdal.testing.plugin``.

pyproject.toml turns the plugin on (``asyncdal_fixtures = true``), exactly as a service would:
``db``, ``session`` (rolled back after each test), ``committed_db``, ``migrated_url``,
``empty_database_url``, ``dsn``... on ``DATABASE_URL`` or a throwaway embedded server. The
names below are re-exported for the tests that import them. The replica tests' ``primary``,
``replica`` and ``replica_db`` come from ``tests/_replicas.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asyncdal.testing.plugin import TEST_APPLICATION_NAME, fresh_database, to_dsn, truncate_all
from tests._replicas import primary, replica, replica_db

__all__ = [
    "TEST_APPLICATION_NAME",
    "_dsn",
    "fresh_database",
    "primary",
    "replica",
    "replica_db",
    "truncate_all",
]

#: The older name of :func:`asyncdal.testing.plugin.to_dsn`, used across the tests.
_dsn = to_dsn


@pytest.fixture(scope="session", autouse=True)
async def _asyncio_debug() -> AsyncIterator[None]:
    """The whole run's event loop in debug mode: a coroutine never awaited, a task destroyed
    while pending or a callback raising is reported with where it was created; warnings are
    errors (pyproject.toml), so such a report fails the run."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    # Debug mode logs callbacks slower than 0.1 s; on a loaded 2-core runner that is noise.
    loop.slow_callback_duration = 10.0
    previous = loop.get_exception_handler()

    def record(running: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        _loop_reports.append(context)
        running.default_exception_handler(context)

    loop.set_exception_handler(record)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)


#: What reached the event loop's exception handler ("Task was destroyed but it is pending!",
#: "Future exception was never retrieved"...) since the last test ended.
_loop_reports: list[dict[str, Any]] = []


@pytest.fixture(autouse=True)
def _nothing_reaches_the_loop_handler() -> Iterator[None]:
    """A test fails if anything reached the loop's exception handler while it ran."""
    _loop_reports.clear()
    yield
    reports = list(_loop_reports)
    _loop_reports.clear()
    assert reports == [], [(c.get("message"), c.get("exception")) for c in reports]
