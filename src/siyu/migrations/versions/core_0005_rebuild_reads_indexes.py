"""the full OneID rebuild reads narrow indexes, not the wide order-line and identity rows

At 10M members the store is ~25 GB, more than the machine's memory, and the rebuild read ~14 GB
of it (every order line row for its member and evidence columns). The member index of order
lines now also holds the line's three evidence ids, so one scan of it gives the rebuild a line's
member and values; a partial index names the polluted values. Both are cheap to keep: the
first index was written on every insert already, the second holds a handful of rows.

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-11-24 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0005"
down_revision: str | Sequence[str] | None = "core_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVIDENCE = ("member_no_identity_id", "phone_identity_id", "unionid_identity_id")


def upgrade() -> None:
    op.drop_index("ix_order_lines_member_paid", table_name="order_lines")
    op.create_index(
        "ix_order_lines_member_paid", "order_lines", ["member_id", "paid_at", *_EVIDENCE]
    )
    op.create_index(
        "ix_identities_polluted",
        "identities",
        ["id"],
        sqlite_where=sa.text("polluted"),
        postgresql_where=sa.text("polluted"),
    )


def downgrade() -> None:
    op.drop_index("ix_identities_polluted", table_name="identities")
    op.drop_index("ix_order_lines_member_paid", table_name="order_lines")
    op.create_index("ix_order_lines_member_paid", "order_lines", ["member_id", "paid_at"])
