"""Test harness: the fixtures services get, from ``asyncdal.testing.plugin``.

pyproject.toml turns the plugin on (``asyncdal_fixtures = true``), exactly as a service would:
``db``, ``session`` (rolled back after each test), ``committed_db``, ``migrated_url``,
``empty_database_url``, ``dsn``... on ``DATABASE_URL`` or a throwaway embedded server. The
names below are re-exported for the tests that import them.
"""

from __future__ import annotations

from asyncdal.testing.plugin import TEST_APPLICATION_NAME, fresh_database, to_dsn, truncate_all

__all__ = ["TEST_APPLICATION_NAME", "_dsn", "fresh_database", "truncate_all"]

#: The older name of :func:`asyncdal.testing.plugin.to_dsn`, used across the tests.
_dsn = to_dsn
