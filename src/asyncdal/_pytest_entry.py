"""The ``pytest11`` entry point: it only adds an ini flag, so installing asyncdal changes no suite.

``asyncdal_fixtures = true`` in the pytest configuration (or ``-p asyncdal.testing.plugin``)
loads :mod:`asyncdal.testing.plugin`.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption", "pytest_configure"]

_PLUGIN = "asyncdal.testing.plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the opt-in flag."""
    parser.addini(
        "asyncdal_fixtures",
        "load asyncdal's fixtures (asyncdal.testing.plugin): db, session, committed_db, ...",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Load the fixtures when the flag is on and ``-p`` did not already."""
    if config.getini("asyncdal_fixtures") and not config.pluginmanager.has_plugin(_PLUGIN):
        from asyncdal.testing import plugin

        # pytest_configure is historic: the plugin's own runs on registration.
        config.pluginmanager.register(plugin, _PLUGIN)
