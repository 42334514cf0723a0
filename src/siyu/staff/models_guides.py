"""Tables of the guide side of staff: the task centre, member ownership with its history, and
the staff settings (attribution rule order) and PK contests.

Member ids reference `members.id` by table name only: the staff domain never imports the
identity models (model_registry composes them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class GuideTask(Base):
    """One unit of work for one guide: "send this to these 12 customers", "call these 5"."""

    __tablename__ = "guide_tasks"
    __table_args__ = (Index("ix_guide_tasks_guide_status_due", "guide_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text, default=None)
    guide_id: Mapped[int] = mapped_column(BigId, ForeignKey("staff.id"))
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id"), index=True, default=None
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    source: Mapped[str] = mapped_column(String(16))
    # Idempotency: a journey step, SOP occurrence or WeCom callback creates its task once.
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class GuideTaskMember(Base):
    """A member a task is about, with its own status (done when the send/result event arrives)."""

    __tablename__ = "guide_task_members"
    __table_args__ = (UniqueConstraint("task_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("guide_tasks.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class MemberOwner(Base):
    """Who owns a member now: the guide and store that get credit and may contact them."""

    __tablename__ = "member_owners"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    guide_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("staff.id"), index=True, default=None
    )
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id"), index=True, default=None
    )
    # The store the member came from; a franchise origin keeps the member with that store.
    origin_store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id"), default=None
    )
    rule: Mapped[str] = mapped_column(String(24))
    # A manual assignment is never overridden by automatic attribution.
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class MemberOwnerHistory(Base):
    """Append-only: every change of a member's owner guide or store, with who and why."""

    __tablename__ = "member_owner_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    from_guide_id: Mapped[int | None] = mapped_column(BigId, default=None)
    to_guide_id: Mapped[int | None] = mapped_column(BigId, default=None)
    from_store_id: Mapped[int | None] = mapped_column(BigId, default=None)
    to_store_id: Mapped[int | None] = mapped_column(BigId, default=None)
    rule: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffSetting(Base):
    """Small named settings of the staff domain (e.g. the attribution rule order)."""

    __tablename__ = "staff_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contest(Base):
    """A PK contest between stores or guides on one metric over a date range."""

    __tablename__ = "staff_contests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    level: Mapped[str] = mapped_column(String(8))  # store | guide
    metric: Mapped[str] = mapped_column(String(32))
    participants: Mapped[list[str]] = mapped_column(JSON)  # store codes or staff numbers
    starts_on: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_on: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
