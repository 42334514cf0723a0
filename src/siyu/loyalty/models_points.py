"""Points, tier and stamp-card tables: accounts, the append-only ledger, lots, allocations,
the tier program, stamp cards, stamps and card completions.

Race safety (ADR 0001): every write to a member's points first takes the lock of that member's
`points_accounts` row (an UPDATE, which is a row lock on PostgreSQL and the write lock on
SQLite) and only then reads balances, so two spends of one member run one after the other.
The backstops are in the schema: a lot's `remaining` never leaves [0, points] (debt lots, the
only negative ones, mirror that), and `points_entries.idempotency_key` is UNIQUE so a business
key is applied once. The balance is never stored: it is the sum of `points_entries.points`,
which equals the sum of `remaining` over active lots.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class EntryKind(StrEnum):
    EARN = "earn"  # a lot was created (pending or active)
    ACTIVATE = "activate"  # a pending lot became spendable
    SPEND = "spend"
    RESTORE = "restore"  # a spend was reversed: its lots got their points back
    EXPIRE = "expire"
    REVERSE = "reverse"  # earned points taken back (refund)
    WRITE_OFF = "write_off"  # the part of a reversal the policy did not let us take back


class LotState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVERSED = "reversed"


class LotKind(StrEnum):
    EARN = "earn"
    DEBT = "debt"  # negative balance left by an allow-negative reversal


class PointsAccount(Base):
    """The lock row of a member's points, and the member's tier state."""

    __tablename__ = "points_accounts"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    tier_code: Mapped[str | None] = mapped_column(String(32), default=None)
    tier_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tier_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tier_warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sign_in_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_sign_in: Mapped[date | None] = mapped_column(Date, default=None)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsEntry(Base):
    """One append-only ledger line; `points` moves the spendable balance, `pending` the
    points earned but not yet spendable."""

    __tablename__ = "points_entries"
    __table_args__ = (
        Index("ix_points_entries_member_at", "member_id", "created_at"),
        CheckConstraint(
            "kind IN ('earn','activate','spend','restore','expire','reverse','write_off')",
            name="kind_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(200), default=None)
    lot_id: Mapped[int | None] = mapped_column(BigId, default=None)
    related_entry_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsLot(Base):
    """Points earned together: pending → active → expired (or reversed)."""

    __tablename__ = "points_lots"
    __table_args__ = (
        Index("ix_points_lots_member_state_expiry", "member_id", "state", "expires_at"),
        Index("ix_points_lots_state_expiry", "state", "expires_at"),
        CheckConstraint(
            "(kind = 'earn' AND remaining >= 0 AND remaining <= points)"
            " OR (kind = 'debt' AND remaining <= 0 AND remaining >= points)",
            name="remaining_within_lot",
        ),
        CheckConstraint("state IN ('pending','active','expired','reversed')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(8), default=LotKind.EARN)
    state: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsAllocation(Base):
    """Which lots a spend (or a reversal) drew from, and how much from each."""

    __tablename__ = "points_allocations"
    __table_args__ = (
        UniqueConstraint("entry_id", "lot_id"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(BigId, ForeignKey("points_lots.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)


class LoyaltyRules(Base):
    """Validated rule documents: code 'earn' (earn rules) and 'tiers' (the tier program)."""

    __tablename__ = "loyalty_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    rules: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StampCard(Base):
    """A stamp card (集点): `stamps_required` qualifying purchases earn the reward."""

    __tablename__ = "stamp_cards"
    __table_args__ = (CheckConstraint("stamps_required >= 1", name="stamps_required_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    stamps_required: Mapped[int] = mapped_column(Integer)
    min_order_fen: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str | None] = mapped_column(String(64), default=None)
    reward_points: Mapped[int] = mapped_column(Integer, default=0)
    reward_coupon: Mapped[str | None] = mapped_column(String(64), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StampCompletion(Base):
    """A full card and its reward; revoked when a refund takes one of its stamps away."""

    __tablename__ = "stamp_completions"
    __table_args__ = (UniqueConstraint("card_id", "member_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("stamp_cards.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reward: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Stamp(Base):
    """One qualifying purchase on a card; an order stamps a card at most once."""

    __tablename__ = "stamps"
    __table_args__ = (
        UniqueConstraint("card_id", "order_id"),
        Index("ix_stamps_card_member", "card_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("stamp_cards.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    order_id: Mapped[str] = mapped_column(String(64))
    completion_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stamp_completions.id"), default=None
    )
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsCursor(Base):
    """How far a background job has read (earn_for_orders: order lines imported up to here)."""

    __tablename__ = "points_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[datetime] = mapped_column(UTCDateTime)
