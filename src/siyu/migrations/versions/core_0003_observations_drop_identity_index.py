"""identity observations: drop the index on identity_id alone

The unique constraint (identity_id, record_kind, record_key) already serves every lookup by
identity_id (it is its prefix); the extra index only cost a third B-tree write per
observation, about a third of an order import's observation time.

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-24 08:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "core_0003"
down_revision: str | Sequence[str] | None = "core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_identity_observations_identity_id", table_name="identity_observations")


def downgrade() -> None:
    op.create_index(
        "ix_identity_observations_identity_id", "identity_observations", ["identity_id"]
    )
