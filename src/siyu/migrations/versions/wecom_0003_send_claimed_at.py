"""WeCom staff sends: claimed_at (closing pushes a stopped worker left unfinished)

Revision ID: wecom_0003
Revises: wecom_0002
Create Date: 2026-11-23 16:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = "wecom_0003"
down_revision: str | Sequence[str] | None = "wecom_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wecom_send_tasks") as batch_op:
        batch_op.add_column(
            sa.Column("claimed_at", siyu.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("wecom_send_tasks") as batch_op:
        batch_op.drop_column("claimed_at")
