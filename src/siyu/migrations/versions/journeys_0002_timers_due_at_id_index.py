"""journey timers: index (due_at, id), the claim's order, instead of (due_at)

With every timer due at once (a backlog after an outage; the 1M benchmark) PostgreSQL planned
the claim as a hash join and a sort of all due timers per batch (>1 s per 2,000-timer claim at
1M); with (due_at, id) it walks the index to the LIMIT.

Revision ID: journeys_0002
Revises: journeys_0001
Create Date: 2026-11-24 02:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "journeys_0002"
down_revision: str | Sequence[str] | None = "journeys_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("journey_timers", schema=None) as batch_op:
        batch_op.create_index("ix_journey_timers_due_at_id", ["due_at", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_journey_timers_due_at"))


def downgrade() -> None:
    with op.batch_alter_table("journey_timers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journey_timers_due_at"), ["due_at"], unique=False)
        batch_op.drop_index("ix_journey_timers_due_at_id")
