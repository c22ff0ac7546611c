"""Row versions against lost updates: ``version`` and ``updated_at`` on products and users.

Both are kept by the database, whoever writes the row (the ORM, a repository's ``UPDATE``, an
order taking stock, a hand-written statement): a ``BEFORE UPDATE`` trigger sets
``version = OLD.version + 1`` and ``updated_at = now()`` when the row really changed. The
models declare ``version`` as SQLAlchemy's ``version_id_col`` (server-side), so an ORM update
is ``UPDATE ... WHERE id = $1 AND version = $2`` and loses, instead of overwriting, when
someone else wrote the row in between.

Columns given as trigger arguments are counters the layer keeps exact on its own
(``users.follower_count``): a change to them alone is not an edit, so it does not bump the
version (a profile edit does not conflict with a new follower).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = "asyncdal_row_written"
# table -> counter columns whose changes alone are not edits
_TABLES = {"products": (), "users": ("follower_count",)}


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(
            table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        op.add_column(
            table,
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
        )
    # The trigger arguments (TG_ARGV, NULL when there are none) name the ignored counters;
    # jsonb minus text[] drops them from both sides of the comparison.
    op.execute(
        f"""
        CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            ignored text[] := coalesce(TG_ARGV, '{{}}');
        BEGIN
            IF to_jsonb(NEW) - ignored IS DISTINCT FROM to_jsonb(OLD) - ignored THEN
                NEW.version := OLD.version + 1;
                NEW.updated_at := now();
            ELSE
                NEW.version := OLD.version;
                NEW.updated_at := OLD.updated_at;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    for table, counters in _TABLES.items():
        arguments = ", ".join(f"'{column}'" for column in counters)
        op.execute(
            f"CREATE TRIGGER {table}_row_written BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}({arguments})"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_row_written ON {table}")
    op.execute(f"DROP FUNCTION {_FUNCTION}()")
    for table in _TABLES:
        op.drop_column(table, "updated_at")
        op.drop_column(table, "version")
