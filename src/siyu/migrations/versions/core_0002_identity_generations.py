"""identity generations: released_at, one current row per (type, value)

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-11-23 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = "core_0002"
down_revision: str | Sequence[str] | None = "core_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("released_at", siyu.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint("uq_identities_type_value", type_="unique")
        batch_op.create_index(
            "uq_identities_current",
            ["type", "value"],
            unique=True,
            sqlite_where=sa.text("released_at IS NULL"),
            postgresql_where=sa.text("released_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("uq_identities_current")
        batch_op.create_unique_constraint("uq_identities_type_value", ["type", "value"])
        batch_op.drop_column("released_at")
