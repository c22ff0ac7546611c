"""The consumer walk-through: a service with its own migrations beside asyncdal's, end to end.

Run it with the interpreter of an environment where asyncdal is installed, the way a service
has it: CI builds the wheel and installs it (not editable) into a fresh venv, then runs::

    .venv-consumer/bin/python examples/invoicing/walkthrough.py --require-wheel

Without ``--database-url`` it starts its own throwaway server (``asyncdal.testing``). It migrates
asyncdal's schema (a minimal ini with ``script_location = asyncdal:migrations``, and
``asyncdal.upgrade``) and the service's ``invoices`` table (``examples/invoicing/alembic.ini``)
up and down in either order, and checks that neither history touches the other and that
``check_schema()`` and both ``alembic check`` runs are clean. Exits 1 at the first surprise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

import asyncdal
from asyncdal.testing import EmbeddedPostgres

HERE = Path(__file__).resolve().parent
SERVICE_INI = HERE / "alembic.ini"
OURS = {"users", "follows", "posts", "hashtags", "post_hashtags", "likes", "products", "orders"}


class WalkthroughError(Exception):
    """A step did not do what a service expects."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise WalkthroughError(message)


def _alembic(ini: Path, url: str, *args: str, ok: bool = True) -> str:
    """Run the ``alembic`` command of this interpreter; its output."""
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        env={**os.environ, "DATABASE_URL": url},
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if ok and result.returncode != 0:
        raise WalkthroughError(f"alembic {' '.join(args)} failed:\n{output}")
    return output


def _command(url: str, *args: str) -> str:
    """Run the ``asyncdal`` command (the [cli] extra) of this interpreter; its output."""
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-c", "from asyncdal.cli import main; main()", *args],
        env={**os.environ, "DATABASE_URL": url, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise WalkthroughError(f"asyncdal {' '.join(args)} failed:\n{output}")
    return output


async def _state(url: str) -> tuple[set[str], list[str], list[str]]:
    """(tables, the service's version rows, asyncdal's version rows)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql", 1))
    try:
        tables = {
            row[0]
            for row in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        versions: list[list[str]] = []
        for table in ("alembic_version", "asyncdal_alembic_version"):
            rows = []
            if table in tables:
                rows = [r[0] for r in await conn.fetch(f"SELECT version_num FROM {table}")]  # noqa: S608 (fixed names)
            versions.append(rows)
    finally:
        await conn.close()
    return tables, versions[0], versions[1]


def _step(text: str) -> None:
    print(f"-- {text}", flush=True)


async def walk(url: str, minimal_ini: Path) -> None:
    """Every step of the walk-through on the (empty) database at ``url``."""
    head = asyncdal.head_revision()

    _step("asyncdal's first revision, from a minimal ini (no logging sections)")
    _alembic(minimal_ini, url, "upgrade", "asyncdal@base+1")
    tables, theirs, ours = await _state(url)
    _expect(tables >= OURS and theirs == [] and len(ours) == 1, f"after ours: {tables} {ours}")

    _step("the service's history, in its own environment: invoices references orders")
    _alembic(SERVICE_INI, url, "upgrade", "head")
    tables, theirs, ours_after = await _state(url)
    _expect("invoices" in tables and theirs == ["inv1"], f"service upgrade: {tables} {theirs}")
    _expect(ours_after == ours, f"the service's upgrade touched asyncdal's version: {ours_after}")

    _step("asyncdal to head after the service (asyncdal.upgrade, from code)")
    await asyncdal.upgrade(url)
    _, theirs, ours = await _state(url)
    _expect(ours == [head] and theirs == ["inv1"], f"after asyncdal.upgrade: {ours} {theirs}")
    _expect(await asyncdal.current_revision(url) == head, "current_revision is not head")

    _step("drift checks (check_schema, both alembic checks, asyncdal check) see their own tables")
    sys.path.insert(0, str(HERE))
    import invoicing.models  # the service's model on asyncdal's Base, as in the service

    _expect(invoicing.models.Invoice.__tablename__ == "invoices", "the service model")
    differences = await asyncdal.check_schema(url)
    _expect(differences == [], f"check_schema() reports {differences}")
    for ini in (minimal_ini, SERVICE_INI):
        output = _alembic(ini, url, "check")
        _expect("No new upgrade operations detected" in output, f"alembic check: {output}")
    if importlib.util.find_spec("typer") is None:
        print("   `asyncdal check` / `asyncdal migrate` skipped: no [cli] extra here")
    else:
        output = _command(url, "check")
        _expect("matches asyncdal's models" in output, f"asyncdal check: {output}")
        output = " ".join(_command(url, "migrate").split())
        _expect(f"already at revision {head}: nothing to do" in output, output)

    _step("downgrading asyncdal under the service's table is refused, and changes nothing")
    before = await _state(url)
    try:
        await asyncdal.downgrade(url, "base")
    except asyncdal.MigrationError as exc:
        print(f"   refused: {type(exc).__name__}: {exc}")
    else:
        raise WalkthroughError("asyncdal's downgrade dropped orders under invoices")
    _expect(await _state(url) == before, "a refused downgrade changed the database")

    _step("the service down to base: asyncdal untouched")
    _alembic(SERVICE_INI, url, "downgrade", "base")
    tables, theirs, ours = await _state(url)
    _expect("invoices" not in tables and theirs == [], f"service downgrade: {tables}")
    _expect(tables >= OURS and ours == [head], f"the service's downgrade touched ours: {ours}")

    _step("asyncdal down to base, then both up again in the other order of tools")
    _alembic(minimal_ini, url, "downgrade", "base")
    tables, theirs, ours = await _state(url)
    _expect(not (OURS & tables) and ours == [], f"asyncdal downgrade left {tables} {ours}")
    await asyncdal.upgrade(url)
    _alembic(SERVICE_INI, url, "upgrade", "head")
    tables, theirs, ours = await _state(url)
    _expect(theirs == ["inv1"] and ours == [head] and "invoices" in tables, "second upgrade")
    _expect(await asyncdal.check_schema(url) == [], "check_schema() after the second upgrade")
    _step("the service's own test suite, on asyncdal's pytest plugin (if pytest is installed)")
    if importlib.util.find_spec("pytest") is None:
        print("   skipped: no pytest here (install 'asyncdal[testing]')")
    else:
        suite = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            env={**os.environ, "DATABASE_URL": url},
            cwd=HERE,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = (suite.stdout + suite.stderr).strip().splitlines()
        _expect(suite.returncode == 0, "the service's tests failed:\n" + "\n".join(lines))
        print(f"   {lines[-1] if lines else ''}")
    print(f"consumer walk-through passed (asyncdal at {head}, the service at inv1)")


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with EmbeddedPostgres(database="service") as pg:
        yield pg.url


def main() -> None:
    """Parse the arguments, find or start a server, and walk."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY database (default: a throwaway server)")
    parser.add_argument(
        "--require-wheel",
        action="store_true",
        help="fail unless asyncdal is an installed wheel (not the checkout)",
    )
    args = parser.parse_args()
    # The two-line ini of the docs: the same in an editable install and from the wheel.
    location = "asyncdal:migrations"
    installed_at = Path(asyncdal.__file__).parent
    print(f"asyncdal {asyncdal.__version__} from {installed_at}; migrations at {location}")
    if args.require_wheel and "site-packages" not in installed_at.parts:
        raise SystemExit("asyncdal is not installed from a wheel here")
    with tempfile.TemporaryDirectory() as temp, _server(args.database_url) as url:
        minimal_ini = Path(temp) / "alembic.ini"
        minimal_ini.write_text(f"[alembic]\nscript_location = {location}\n")
        try:
            asyncio.run(walk(url, minimal_ini))
        except WalkthroughError as exc:
            print(f"consumer walk-through FAILED: {exc}", file=sys.stderr)
            raise SystemExit(1) from None


if __name__ == "__main__":
    main()
