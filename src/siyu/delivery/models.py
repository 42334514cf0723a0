"""Tables of the delivery domain: consent history, policy as data, the outbox and decisions.

Policy is data, not code: frequency caps and quiet hours are rows an operator edits (e.g.
"WeCom: at most 4 a month", "SMS: nothing 21:00–09:00, hold until morning").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime

ALL_CHANNELS = "*"


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for the dispatcher (or held until `not_before`)
    SENT = "sent"
    SUPPRESSED = "suppressed"  # policy said no; never retried
    DEAD = "dead"  # failed `max_attempts` times: the dead-letter state


class Decision(StrEnum):
    SENT = "sent"
    HELD = "held"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    DEAD = "dead"


class QuietRule(StrEnum):
    HOLD = "hold"  # send when quiet hours end
    DROP = "drop"  # suppress the message


class Consent(Base):
    """Append-only consent history (PIPL): the newest row per (member, channel) is in force.

    channel `*` is a decision about every channel (an unsubscribe-from-everything).
    """

    __tablename__ = "delivery_consents"
    __table_args__ = (Index("ix_delivery_consents_member_channel", "member_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    channel: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FrequencyCap(Base):
    """At most `max_messages` sent to one member on `channel` (or `*` = all channels together)
    within a rolling window of `window_hours`."""

    __tablename__ = "delivery_frequency_caps"
    __table_args__ = (UniqueConstraint("channel", "window_hours"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    max_messages: Mapped[int] = mapped_column(Integer)
    window_hours: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(120), default="")


class QuietHours(Base):
    """No sending on `channel` (or `*`) between start and end, business time ("21:00"–"09:00")."""

    __tablename__ = "delivery_quiet_hours"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), unique=True)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    rule: Mapped[str] = mapped_column(String(8), default=QuietRule.HOLD)


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as the journey step that made it."""

    __tablename__ = "delivery_outbox"
    __table_args__ = (
        Index("ix_delivery_outbox_due", "status", "not_before"),
        Index("ix_delivery_outbox_member_sent", "member_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"), default=None)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str | None] = mapped_column(String(512), default=None)
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class DeliveryDecision(Base):
    """Every decision about an outbox message: sent, held, suppressed, failed or dead — and why."""

    __tablename__ = "delivery_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("delivery_outbox.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(BigId, default=None, index=True)
    channel: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
