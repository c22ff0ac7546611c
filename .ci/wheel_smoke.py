"""CI: the built wheel, installed in a fresh venv (no checkout on sys.path), migrates a database.

Run by ``.ci/run`` with the wheel venv's interpreter from an empty directory. It starts a
throwaway server with ``asyncdal.testing.EmbeddedPostgres`` (shipped in the wheel), then:
``asyncdal.upgrade`` from code, ``alembic upgrade head`` / ``downgrade base`` through a minimal
ini that points at the shipped scripts (``asyncdal:migrations``), and ``check_schema`` clean.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncdal
from asyncdal.testing import EmbeddedPostgres

MINIMAL_INI = "[alembic]\nscript_location = asyncdal:migrations\n"


def _alembic(ini: Path, url: str, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        capture_output=True,
        text=True,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"alembic {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


async def _from_code(url: str) -> None:
    await asyncdal.upgrade(url)
    assert await asyncdal.current_revision(url) == asyncdal.head_revision()
    assert await asyncdal.check_schema(url) == []
    await asyncdal.downgrade(url, "base")
    assert await asyncdal.current_revision(url) is None


def main() -> None:
    """Fail loudly (non-zero exit) on anything a service would trip over."""
    package = Path(asyncdal.__file__).parent
    assert "site-packages" in str(package), f"not the installed wheel: {package}"
    assert (package / "migrations" / "env.py").is_file(), "the wheel lacks its migrations"
    assert "typer" not in sys.modules
    assert "rich" not in sys.modules
    with EmbeddedPostgres() as pg, tempfile.TemporaryDirectory() as service:
        asyncio.run(_from_code(pg.url))
        ini = Path(service) / "alembic.ini"
        ini.write_text(MINIMAL_INI)
        _alembic(ini, pg.url, "upgrade", "head")
        _alembic(ini, pg.url, "check")
        _alembic(ini, pg.url, "downgrade", "base")
    print(f"wheel OK: {package} migrates up and down, from code and with alembic")


if __name__ == "__main__":
    main()
