"""pytest fixtures for services built on asyncdal (and for asyncdal's own tests): opt-in.

Enable with ``-p asyncdal.testing.plugin`` or, in the pytest configuration,
``asyncdal_fixtures = true``; installing asyncdal alone changes no test suite. Needs
pytest-asyncio (``pip install 'asyncdal[testing]'``); the async fixtures run on the session's
event loop, so set ``asyncio_default_fixture_loop_scope`` and
``asyncio_default_test_loop_scope`` to ``"session"``.

- ``server_url`` (session): ``DATABASE_URL``, or a throwaway :class:`EmbeddedPostgres`.
- ``database_url`` (session): a fresh database on it for this run, dropped at the end.
- ``migrated_url`` (session): that database migrated to asyncdal's head. A service with its
  own migrations overrides it in its ``conftest.py`` and runs them after ``upgrade``.
- ``db`` (session): one :class:`~asyncdal.Database` on it, disposed at the end.
- ``session``: a :class:`~asyncdal.DALSession` in an outer transaction rolled back after the
  test (the code under test may commit: that only releases a SAVEPOINT); the factories in
  :mod:`asyncdal.testing.factories` write into it.
- ``committed_db``: ``db`` for tests whose data must be visible to other connections
  (``db.gather``): every table is emptied before and after the test.
- ``empty_database_url``: an empty database of the test's own, for tests that migrate it.
- ``dsn``: the test database as a libpq DSN, for raw asyncpg.
- ``app_client``: an ``httpx.AsyncClient`` on the service's own ``app`` fixture with the app's
  lifespan running (``DATABASE_URL`` is the test database meanwhile); requests commit, so
  every table is emptied before and after the test, as with ``committed_db``.
"""

from asyncdal.testing._plugin import (
    TEST_APPLICATION_NAME,
    app_client,
    committed_db,
    database_url,
    db,
    dsn,
    empty_database_url,
    fresh_database,
    migrated_url,
    pytest_configure,
    server_url,
    session,
    to_dsn,
    truncate_all,
)

__all__ = [
    "TEST_APPLICATION_NAME",
    "app_client",
    "committed_db",
    "database_url",
    "db",
    "dsn",
    "empty_database_url",
    "fresh_database",
    "migrated_url",
    "pytest_configure",
    "server_url",
    "session",
    "to_dsn",
    "truncate_all",
]
