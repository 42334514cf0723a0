"""Order lines as imported; an order is every line sharing an order_id (DESIGN §4.2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        # The evidence ids ride along so the full OneID rebuild reads this index, not the rows.
        Index(
            "ix_order_lines_member_paid",
            "member_id",
            "paid_at",
            "member_no_identity_id",
            "phone_identity_id",
            "unionid_identity_id",
        ),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("status IN ('paid', 'refunded')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    line_no: Mapped[int] = mapped_column(Integer, default=1)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    member_no: Mapped[str | None] = mapped_column(String(64), default=None)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    unionid: Mapped[str | None] = mapped_column(String(64), default=None)
    store_code: Mapped[str | None] = mapped_column(String(32), default=None)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(16), default="paid")
    category: Mapped[str | None] = mapped_column(String(64), default=None)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    row_hash: Mapped[str] = mapped_column(String(32))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # OneID evidence (docs/oneid.md): the identity generation each value named when the line
    # was imported. A line's evidence lives here rather than as observation rows, so an import
    # writes one row per line; no FK and no index, as nothing looks lines up by identity.
    member_no_identity_id: Mapped[int | None] = mapped_column(BigId, default=None)
    phone_identity_id: Mapped[int | None] = mapped_column(BigId, default=None)
    unionid_identity_id: Mapped[int | None] = mapped_column(BigId, default=None)
