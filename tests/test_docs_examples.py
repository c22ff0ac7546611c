"""Every code block of README.md and docs/ is labelled, and every Python block runs.

A small extractor of our own rather than pytest-examples or sybil: each block must be a
complete program run as its reader would run it (``python example.py`` in an empty directory,
``DATABASE_URL`` set, nothing injected), in a subprocess with a database of its own (a copy of
a migrated template, so blocks cannot see each other's rows). pytest-examples and sybil run
blocks in the test process, in namespaces the test prepares, which is what let the README's
fragments (top-level ``await``, an undefined ``db``) pass before; both also bring conventions
(pytest-examples formats and lints the block; sybil's parsers and namespaces) we do not need.

Conventions, in an HTML comment on the line just before a block's opening fence:

- none: a complete program; it must exit 0.
- ``<!-- fragment of PATH -->``: a fragment of the repository file PATH (a complete program or
  module that the suite runs elsewhere, e.g. the invoicing service's ``env.py``); its lines
  must appear in that file, in order and contiguous.
- ``<!-- test module -->``: a pytest module for a service's suite; it runs under pytest with
  the asyncdal plugin enabled and must pass.

Blocks in other languages (bash, ini, toml, text) are not run, but every fence has a label.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from asyncdal import upgrade
from asyncdal.testing.plugin import fresh_database, to_dsn

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^<!-- (?P<what>fragment of (?P<path>\S+)|test module) -->$")
_LABELS = {"python", "bash", "ini", "toml", "text"}


@dataclass(frozen=True)
class Block:
    """One fenced block of a documentation file."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    directive: str  # "", "test module" or "fragment of PATH"

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documentation_files() -> list[Path]:
    # docs/results is the benchmarks' results directory (JSON and charts), no Markdown.
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{path}:{index + 1}: a code block is never closed"
        previous = lines[index - 1].strip() if index else ""
        directive = _DIRECTIVE.match(previous)
        body = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        found.append(
            Block(
                path=path,
                line=index + 1,
                language=opening["info"].strip().split(" ")[0],
                code=body,
                directive=directive["what"] if directive else "",
            )
        )
        index = end + 1
    return found


ALL = [block for path in documentation_files() for block in blocks(path)]
PYTHON = [block for block in ALL if block.language == "python"]


def test_the_extractor_finds_the_documentation() -> None:
    assert {block.path.name for block in PYTHON} >= {"README.md", "concepts.md", "service.md"}
    assert len(PYTHON) >= 10


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.id)
def test_every_block_is_labelled(block: Block) -> None:
    assert block.language in _LABELS, f"{block.id}: label the block (one of {sorted(_LABELS)})"


@pytest.mark.parametrize(
    "block", [b for b in PYTHON if b.directive.startswith("fragment of")], ids=lambda b: b.id
)
def test_a_fragment_is_part_of_the_file_it_names(block: Block) -> None:
    target = ROOT / block.directive.removeprefix("fragment of ")
    assert target.is_file(), f"{block.id}: {target} does not exist"
    wanted = [line.rstrip() for line in textwrap.dedent(block.code).strip().splitlines()]
    source = [line.rstrip() for line in target.read_text().splitlines()]
    # Compared without their common indentation: a fragment may come from inside a function.
    starts = [i for i, line in enumerate(source) if line.strip() == wanted[0].strip()]
    for start in starts:
        window = source[start : start + len(wanted)]
        if textwrap.dedent("\n".join(window)) == "\n".join(wanted):
            return
    pytest.fail(f"{block.id}: these lines are not in {target.relative_to(ROOT)}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def template(server_url: str) -> AsyncIterator[str]:
    """A migrated database that each block's own database is copied from."""
    async with fresh_database(server_url, "asyncdal_docs") as url:
        assert url is not None, "the role may not CREATE DATABASE"
        await upgrade(url)
        yield str(make_url(url).database)


@pytest_asyncio.fixture(loop_scope="session")
async def block_database(server_url: str, template: str) -> AsyncIterator[str]:
    """A database of the block's own, a copy of the migrated template."""
    name = f"asyncdal_block_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(to_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


_PYPROJECT = """\
[tool.pytest.ini_options]
asyncdal_fixtures = true
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
filterwarnings = ["error"]
"""


@pytest.mark.parametrize(
    "block", [b for b in PYTHON if not b.directive.startswith("fragment of")], ids=lambda b: b.id
)
async def test_the_block_runs(block: Block, block_database: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": block_database, "PYTHONDEVMODE": "1"}
    env.pop("PYTHONPATH", None)  # the installed asyncdal only, as a reader has it
    if block.directive == "test module":
        (tmp_path / "pyproject.toml").write_text(_PYPROJECT)
        (tmp_path / "test_example.py").write_text(block.code)
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    else:
        (tmp_path / "example.py").write_text(block.code)
        argv = [sys.executable, "-W", "error", "example.py"]
    done = await asyncio.to_thread(
        subprocess.run,
        argv,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"


def _private_imports(code: str) -> list[str]:
    """``asyncdal._x`` (or ``asyncdal.pkg._x``) modules and names that ``code`` imports."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "asyncdal" and any(part.startswith("_") for part in parts[1:]):
                found.append(f"line {node.lineno}: {name}")
    return found


# An import line anywhere in the docs (prose, blocks of any language) of a private module or
# a private name: the first name of a ``from`` import, as the line alone cannot be parsed.
_PRIVATE_IMPORT_LINE = re.compile(
    r"^\s*(?:from|import)\s+asyncdal(?:\.\w+)*(?:\._|\s+import\s+\(?\s*_)(?!_)"
)


def test_private_imports_are_found() -> None:
    assert _private_imports("from asyncdal._migrate import upgrade\nimport asyncdal") == [
        "line 1: asyncdal._migrate",
        "line 1: asyncdal._migrate.upgrade",
    ]
    assert _private_imports("from asyncdal.testing import _plugin") == [
        "line 1: asyncdal.testing._plugin"
    ]
    assert _private_imports("from asyncdal import Database, _version") == [
        "line 1: asyncdal._version"
    ]
    assert _private_imports("from asyncdal.alembic import async_url") == []
    for line in (
        "import asyncdal._writes",
        "  from asyncdal.testing._plugin import x",
        "from asyncdal import _version",
        "from asyncdal.testing import (_plugin,",
    ):
        assert _PRIVATE_IMPORT_LINE.search(line), line
    for line in (
        "import asyncdal",
        "from asyncdal import __version__",
        "from asyncdal.testing import plugin",
        "see asyncdal._writes",
    ):
        assert not _PRIVATE_IMPORT_LINE.search(line), line


def test_the_examples_and_the_docs_use_public_names_only() -> None:
    # The examples are services written from the docs: a private name there means the docs
    # (or the public API) are missing something a service needs.
    sources = sorted((ROOT / "examples").glob("**/*.py"))
    assert len(sources) >= 10
    found = [
        f"{path.relative_to(ROOT)} {hit}"
        for path in sources
        for hit in _private_imports(path.read_text())
    ]
    found += [f"{block.id} {hit}" for block in PYTHON for hit in _private_imports(block.code)]
    found += [
        f"{path.relative_to(ROOT)}:{number} {line.strip()}"
        for path in documentation_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _PRIVATE_IMPORT_LINE.search(line)
    ]
    assert found == []
