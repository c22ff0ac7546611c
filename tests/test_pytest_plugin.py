"""The pytest plugin, as a service's suite sees it: off unless asked, then the fixtures work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVICE_TEST = """
from sqlalchemy import func, select

from asyncdal.accounts import User
from asyncdal.testing.factories import UserFactory, create


async def test_rows_from_factories(session):
    await create(UserFactory, n=3)
    assert await session.scalar(select(func.count()).select_from(User)) == 3


async def test_each_test_starts_empty(session):
    assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_the_database_fixture(committed_db):
    (n,) = await committed_db.gather(lambda s: s.scalar(select(func.count()).select_from(User)))
    assert n == 0
"""

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def _pytest(directory: Path, server_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": server_url}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def service(tmp_path: Path) -> Path:
    (tmp_path / "test_service.py").write_text(SERVICE_TEST)
    (tmp_path / "pytest.ini").write_text(INI)
    return tmp_path


def test_installed_but_not_enabled_changes_nothing(service: Path, server_url: str) -> None:
    result = _pytest(service, server_url)
    assert result.returncode != 0
    assert "fixture 'session' not found" in result.stdout


def test_enabled_with_dash_p(service: Path, server_url: str) -> None:
    result = _pytest(service, server_url, "-p", "asyncdal.testing.plugin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_enabled_with_the_ini_flag(service: Path, server_url: str) -> None:
    (service / "pytest.ini").write_text(INI + "asyncdal_fixtures = true\n")
    result = _pytest(service, server_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_readme_example(tmp_path: Path, server_url: str) -> None:
    import re

    from tests.test_readme import _python_block_after, _text_with

    text = _text_with("## Testing a service")
    section = text[text.index("## Testing a service") :]
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert toml is not None
    (tmp_path / "pyproject.toml").write_text(toml.group(1))
    (tmp_path / "test_readme_example.py").write_text(_python_block_after("## Testing a service"))
    result = _pytest(tmp_path, server_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
