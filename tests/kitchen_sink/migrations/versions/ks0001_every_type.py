"""The kitchen sink: every column type, a composite key, a key not named id.

Revision ID: ks0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ks0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the kitchen-sink tables."""
    op.create_table(
        "ks_gadgets",
        sa.Column("ref", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("small", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("big", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("ratio", sa.Float(), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("span", sa.Interval(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=True),
        sa.Column("docb", postgresql.JSONB(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(20)), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("color", sa.Enum("red", "green", "blue", name="ks_color"), nullable=False),
        sa.Column(
            "size",
            sa.Enum("s", "m", "l", name="ks_size", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("address", postgresql.INET(), nullable=True),
        sa.Column("slug", sa.String(40), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=True),
        sa.PrimaryKeyConstraint("ref"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "ks_pairings",
        sa.Column("left", sa.Integer(), nullable=False),
        sa.Column("right", sa.String(10), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("left", "right"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("ks_pairings")
    op.drop_table("ks_gadgets")
    sa.Enum(name="ks_color").drop(op.get_bind(), checkfirst=True)
