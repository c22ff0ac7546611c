"""The README's example code runs as written, against the test database."""

from __future__ import annotations

import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

from asyncdal import Database
from asyncdal.accounts import User
from asyncdal.commerce import Product

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def _text_with(marker: str) -> str:
    """The README or docs page that contains ``marker`` (each marker is in exactly one)."""
    found = [path.read_text() for path in DOCS if marker in path.read_text()]
    assert len(found) == 1, f"{marker!r} is in {len(found)} documentation files"
    return found[0]


def _python_block_after(marker: str) -> str:
    text = _text_with(marker)
    start = text.index(marker)
    match = re.search(r"```python\n(.*?)```", text[start:], re.DOTALL)
    assert match is not None, f"no python block after {marker!r}"
    return match.group(1)


async def test_the_api_in_a_few_lines_runs(committed_db: Database) -> None:
    async with committed_db.session() as s:
        product = Product(sku="README-1", name="readme", price=Decimal("2.50"), stock=5)
        s.add(product)
    code = _python_block_after("The layer in a few lines")
    source = "async def snippet(db, product_id):\n" + textwrap.indent(code, "    ")
    source += "    return ada, page, top, trending, stats, order\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, str(README), "exec"), namespace)
    ada, page, top, trending, stats, order = await namespace["snippet"](committed_db, product.id)
    assert isinstance(ada, User)
    assert [u.username for u in page] == ["ada"]
    assert [u.username for u in top] == ["ada"]
    assert trending == []
    assert stats.total_posts == 0
    assert order.total == Decimal("5.00")
    async with committed_db.session() as s:
        assert (await s.get(Product, product.id)).stock == 3  # type: ignore[union-attr]


async def test_the_observability_snippet_runs(committed_db: Database) -> None:
    code = _python_block_after("## Observability")
    namespace: dict[str, Any] = {"db": committed_db}
    exec(compile(code, str(README), "exec"), namespace)
    try:
        assert namespace["stats"] == committed_db.stats()
    finally:
        namespace["instrumentation"].uninstrument()
