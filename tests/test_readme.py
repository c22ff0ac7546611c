"""Helpers that find a documentation block by the text before it (see test_docs_examples.py
for the runner that executes every block)."""

from __future__ import annotations

import re
from pathlib import Path

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
