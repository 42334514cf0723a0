"""WeCom welcomes: index on status (sweep of welcomes a stopped worker left claimed)

Revision ID: wecom_0002
Revises: wecom_0001
Create Date: 2026-11-23 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "wecom_0002"
down_revision: str | Sequence[str] | None = "wecom_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_wecom_welcomes_status"), "wecom_welcomes", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wecom_welcomes_status"), table_name="wecom_welcomes")
