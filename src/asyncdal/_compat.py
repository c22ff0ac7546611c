"""What differs between the SQLAlchemy lines asyncdal supports (2.0 LTS and 2.1), in one place.

Everything else uses API common to both; a difference is decided here, by version, never by
``getattr`` fallbacks at the point of use.
"""

from __future__ import annotations

import sqlalchemy

__all__ = ["SQLALCHEMY_2_1"]

#: SQLAlchemy 2.1 or later: ``AsyncSession.delete_all``/``merge_all`` exist.
SQLALCHEMY_2_1: bool = tuple(int(part) for part in sqlalchemy.__version__.split(".")[:2]) >= (2, 1)
