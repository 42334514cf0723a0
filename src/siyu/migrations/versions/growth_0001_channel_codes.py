"""growth: channel codes (活码) and attributions

Revision ID: growth_0001
Revises:
Create Date: 2026-11-23 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.db

revision: str = "growth_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("growth",)
depends_on: str | Sequence[str] | None = "core_0001"


def upgrade() -> None:
    op.create_table(
        "growth_attributions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("store_code", sa.String(length=32), nullable=True),
        sa.Column("attributed_at", siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_attributions")),
        sa.UniqueConstraint("member_id", name=op.f("uq_growth_attributions_member_id")),
    )
    with op.batch_alter_table("growth_attributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_growth_attributions_code_id"), ["code_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_growth_attributions_store_code"), ["store_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_growth_attributions_userid"), ["userid"], unique=False)

    op.create_table(
        "growth_channel_codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("store_code", sa.String(length=32), nullable=True),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("userids", sa.JSON(), nullable=False),
        sa.Column("config_id", sa.String(length=128), nullable=True),
        sa.Column("qr_code", sa.String(length=512), nullable=True),
        sa.Column("welcome", sa.JSON(), nullable=False),
        sa.Column("auto_tags", sa.JSON(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", siyu.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_channel_codes")),
        sa.UniqueConstraint("config_id", name=op.f("uq_growth_channel_codes_config_id")),
        sa.UniqueConstraint("state", name=op.f("uq_growth_channel_codes_state")),
    )


def downgrade() -> None:
    op.drop_table("growth_channel_codes")
    with op.batch_alter_table("growth_attributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_growth_attributions_userid"))
        batch_op.drop_index(batch_op.f("ix_growth_attributions_store_code"))
        batch_op.drop_index(batch_op.f("ix_growth_attributions_code_id"))

    op.drop_table("growth_attributions")
