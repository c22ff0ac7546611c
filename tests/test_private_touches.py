"""The layer uses SQLAlchemy's, asyncpg's and OpenTelemetry's public hooks (issue 18).

No module sets ``__class__``, overrides an underscored method of theirs or calls one; the only
private attributes read are listed here with the reason, each for a guard with no public
equivalent (checked on SQLAlchemy 2.0.54 and 2.1.9, asyncpg 0.29 and 0.32). A new one fails
this test until it is listed, with its reason, where a reader of the code can find it.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "asyncdal"

#: file -> the private attributes of other libraries it reads, and why.
ALLOWED = {
    # asyncpg has no public accessor for a connection's socket: TCP keepalive is set on it.
    "_network.py": {"_transport"},
    # No public "this server-side cursor is exhausted" flag: the stream guard reads it.
    "_session.py": {"_real_result", "_soft_closed"},
    # Not private: Row._asdict() is public, named by namedtuple's convention.
    "cli/_demo.py": {"_asdict"},
}

# A private attribute of something that is not ours: getattr(x, "_name"), or x._name where x
# is not self/cls/a module of ours. Our own private names (_dal_*, helpers) are not matched.
_GETATTR = re.compile(r"getattr\([^,()]+,\s*\"(_[a-z]\w*)\"")
_ATTRIBUTE = re.compile(r"(?<![.\w])(?!self\b|cls\b)([A-Za-z]\w*)\.(_(?!dal_)[a-z]\w*)\b")
_OURS = re.compile(r"^(asyncdal|_[a-z]\w*)$")


def _touches(text: str) -> set[str]:
    code = "\n".join(
        line.split("#", 1)[0]
        for line in text.splitlines()
        if not line.lstrip().startswith(("from ", "import "))
    )
    found = set(_GETATTR.findall(code))
    text = code
    for owner, name in _ATTRIBUTE.findall(text):
        if not _OURS.match(owner):
            found.add(name)
    return found


def test_no_module_swaps_a_class_or_overrides_a_private_method() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "__class__ =" not in text, path
        assert not re.search(r"def _terminate|def _do_|def _handle_dbapi", text), path


def test_private_reads_of_other_libraries_are_only_the_listed_ones() -> None:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        touches = _touches(path.read_text(encoding="utf-8"))
        if touches:
            found[str(path.relative_to(PACKAGE))] = touches
    assert found == ALLOWED
