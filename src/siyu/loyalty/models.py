"""Coupon tables: templates, issued coupons, redemptions, daily budgets, packs and issuances.

Race safety lives here as much as in the code (ADR 0001):
- `coupon_templates.issued_count` only moves by a conditional UPDATE, with a CHECK that it never
  exceeds `budget_total`; `coupon_daily_budgets` does the same per business day.
- a member's claims of a template occupy slots 1..per_member_limit, UNIQUE(template, member,
  slot): two concurrent claims of the same slot cannot both commit.
- UNIQUE(template, member, issue_key) makes every issuance idempotent on the caller's key.
- `coupon_redemptions.active` is 1 while a redemption stands and NULL once reversed, so
  UNIQUE(coupon_id, active) lets a coupon have at most one standing redemption.
Money is integer fen (分) everywhere: no float ever touches an amount.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
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


class CouponKind(StrEnum):
    SPEND_SAVE = "spend_save"  # 满减: spend ≥ threshold, save value
    PERCENT = "percent"  # 折扣: percent off, capped
    CASH = "cash"  # 无门槛: cash off, no threshold
    GIFT = "gift"  # 赠品: a gift SKU, no money off
    FREE_DELIVERY = "free_delivery"  # 免配送费: the delivery fee off


class ValidityKind(StrEnum):
    FIXED = "fixed"
    RELATIVE = "relative"


class TemplateStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class CouponState(StrEnum):
    ISSUED = "issued"
    RESERVED = "reserved"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    VOIDED = "voided"


class RedemptionState(StrEnum):
    REDEEMED = "redeemed"
    REVERSED = "reversed"


class IssuanceStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint("issued_count >= 0", name="issued_not_negative"),
        CheckConstraint(
            "budget_total IS NULL OR issued_count <= budget_total", name="issued_within_budget"
        ),
        CheckConstraint("per_member_limit >= 1", name="member_limit_positive"),
        CheckConstraint("value_fen >= 0 AND threshold_fen >= 0", name="amounts_not_negative"),
        CheckConstraint("percent_off >= 0 AND percent_off < 100", name="percent_in_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TemplateStatus.ACTIVE)
    threshold_fen: Mapped[int] = mapped_column(Integer, default=0)
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    percent_off: Mapped[int] = mapped_column(Integer, default=0)
    cap_fen: Mapped[int | None] = mapped_column(Integer, default=None)
    gift_sku: Mapped[str | None] = mapped_column(String(64), default=None)
    scope: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    validity_kind: Mapped[str] = mapped_column(String(16), default=ValidityKind.RELATIVE)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    valid_days: Mapped[int | None] = mapped_column(Integer, default=None)
    start_after_days: Mapped[int] = mapped_column(Integer, default=0)
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    time_start: Mapped[str | None] = mapped_column(String(5), default=None)
    time_end: Mapped[str | None] = mapped_column(String(5), default=None)
    budget_total: Mapped[int | None] = mapped_column(Integer, default=None)
    budget_daily: Mapped[int | None] = mapped_column(Integer, default=None)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=1)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    stack_group: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponDailyBudget(Base):
    """How many coupons of a template were issued on one business day."""

    __tablename__ = "coupon_daily_budgets"
    __table_args__ = (CheckConstraint("issued >= 0", name="issued_not_negative"),)

    template_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("coupon_templates.id"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    issued: Mapped[int] = mapped_column(Integer, default=0)


class Coupon(Base):
    """One issued coupon; its validity is fixed when it is issued."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("template_id", "member_id", "slot"),
        UniqueConstraint("template_id", "member_id", "issue_key"),
        Index("ix_coupons_member_state", "member_id", "state"),
        Index("ix_coupons_state_valid_until", "state", "valid_until"),
        Index("ix_coupons_reservation_key", "reservation_key"),
        Index("ix_coupons_issuance_id", "issuance_id"),
        CheckConstraint("slot >= 1", name="slot_positive"),
        CheckConstraint(
            "state IN ('issued', 'reserved', 'redeemed', 'expired', 'voided')", name="state_known"
        ),
        CheckConstraint(
            "state <> 'reserved' OR (reservation_key IS NOT NULL"
            " AND reservation_expires_at IS NOT NULL)",
            name="reservation_complete",
        ),
        CheckConstraint("valid_until > valid_from", name="validity_ordered"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    slot: Mapped[int] = mapped_column(Integer)
    issue_key: Mapped[str] = mapped_column(String(160))
    source: Mapped[str] = mapped_column(String(32))
    issuance_id: Mapped[int | None] = mapped_column(BigId, default=None)
    state: Mapped[str] = mapped_column(String(16), default=CouponState.ISSUED)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reservation_key: Mapped[str | None] = mapped_column(String(128), default=None)
    reservation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expiring_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponRedemption(Base):
    """A coupon used on an order; reversed (never deleted) when the order is refunded."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("coupon_id", "order_no"),
        UniqueConstraint("coupon_id", "active"),
        Index("ix_coupon_redemptions_order_no", "order_no"),
        Index("ix_coupon_redemptions_template_at", "template_id", "redeemed_at"),
        CheckConstraint("active IS NULL OR active = 1", name="active_flag"),
        CheckConstraint(
            "(state = 'redeemed' AND active = 1) OR (state = 'reversed' AND active IS NULL)",
            name="active_matches_state",
        ),
        CheckConstraint("discount_fen >= 0 AND order_amount_fen >= 0", name="amounts_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupons.id"))
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    order_no: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default=RedemptionState.REDEEMED)
    active: Mapped[int | None] = mapped_column(Integer, default=1)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    order_amount_fen: Mapped[int] = mapped_column(Integer, default=0)
    store_code: Mapped[str | None] = mapped_column(String(32), default=None)
    channel: Mapped[str | None] = mapped_column(String(32), default=None)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    refund_no: Mapped[str | None] = mapped_column(String(128), default=None)


class CouponPack(Base):
    """A named bundle of templates issued together (new-member pack, 新人礼包)."""

    __tablename__ = "coupon_packs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    for_new_members: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponIssuance(Base):
    """A bulk issuance of one template to a list of members (a segment), restartable by key."""

    __tablename__ = "coupon_issuances"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(160))
    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_templates.id"))
    source: Mapped[str] = mapped_column(String(200), default="")
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=IssuanceStatus.RUNNING)
    targeted: Mapped[int] = mapped_column(Integer, default=0)
    issued: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    held_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class CouponHoldout(Base):
    """A member deliberately left out of an issuance, to measure its ROI against."""

    __tablename__ = "coupon_holdouts"

    issuance_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("coupon_issuances.id"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
