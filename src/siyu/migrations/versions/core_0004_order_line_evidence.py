"""order lines keep their OneID evidence in columns; member_nos per value in a pair table

An order line's identity values were kept as identity_observations rows (two or three per
line, three B-trees each): two thirds of an order import's insert time. A line now names the
identity generation of its member_no, phone and unionid in its own columns, and the pollution
guard counts member_nos per value in `identity_member_nos` (one row per distinct pair) instead
of joining observations with themselves. Existing stores are converted in place.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-11-24 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "core_0004"
down_revision: str | Sequence[str] | None = "core_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TYPES = ("member_no", "phone", "unionid")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LINE_KEY = "order_lines.order_id || ':' || CAST(order_lines.line_no AS VARCHAR(20))"


def upgrade() -> None:
    for kind in _TYPES:
        op.add_column("order_lines", sa.Column(f"{kind}_identity_id", _ID, nullable=True))
    op.create_table(
        "identity_member_nos",
        sa.Column("identity_id", _ID, nullable=False),
        sa.Column("member_no_identity_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint(
            "identity_id", "member_no_identity_id", name=op.f("pk_identity_member_nos")
        ),
    )
    for kind in _TYPES:
        op.execute(
            f"""UPDATE order_lines SET {kind}_identity_id = (
                SELECT o.identity_id FROM identity_observations o
                JOIN identities i ON i.id = o.identity_id AND i.type = '{kind}'
                WHERE o.record_kind = 'order' AND o.record_key = {_LINE_KEY})"""
        )
    # Every (value, member_no) pair any record carried: what the guard counted until now.
    op.execute(
        """INSERT INTO identity_member_nos (identity_id, member_no_identity_id)
        SELECT DISTINCT a.identity_id, b.identity_id FROM identity_observations a
        JOIN identity_observations b
            ON b.record_kind = a.record_kind AND b.record_key = a.record_key
        JOIN identities ia ON ia.id = a.identity_id AND ia.type <> 'member_no'
        JOIN identities ib ON ib.id = b.identity_id AND ib.type = 'member_no'"""
    )
    op.execute("DELETE FROM identity_observations WHERE record_kind = 'order'")


def downgrade() -> None:
    for kind in _TYPES:
        op.execute(
            f"""INSERT INTO identity_observations
                (identity_id, record_kind, record_key, observed_at)
            SELECT {kind}_identity_id, 'order', {_LINE_KEY}, imported_at FROM order_lines
            WHERE {kind}_identity_id IS NOT NULL"""
        )
    op.drop_table("identity_member_nos")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        for kind in _TYPES:
            batch_op.drop_column(f"{kind}_identity_id")
