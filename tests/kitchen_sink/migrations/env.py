"""The kitchen-sink service's Alembic environment: its own version table, beside asyncdal's.

Run in process on a connection the caller passes in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context
from tests.kitchen_sink import models

from asyncdal import Base
from asyncdal.alembic import exclude_asyncdal

assert models.Gadget.__table__ is not None  # imported for its tables on Base.metadata

VERSION_TABLE = "kitchen_sink_alembic_version"

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    include_object=exclude_asyncdal,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
