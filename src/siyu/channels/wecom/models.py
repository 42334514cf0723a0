"""WeCom tables: the durable callback inbox, follow relations (guide ↔ customer), customers,
customer groups and their members, corp tags, welcome sends, staff-confirmed send tracking and
mini-program subscription grants.

A WeCom `userid` is the guide's `staff.staff_no` (decision: brands key staff by their WeCom
account; a guide without one cannot own WeCom customers).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class InboxStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class WeComInbox(Base):
    """One verified, decrypted callback; `dedup_key` makes WeCom's 3 retries land once."""

    __tablename__ = "wecom_inbox"
    __table_args__ = (Index("ix_wecom_inbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str | None] = mapped_column(String(64), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WeComCustomer(Base):
    """A WeCom external contact as last seen (callback or sync), linked to its OneID member."""

    __tablename__ = "wecom_customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), default=None)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    member_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeComFollow(Base):
    """Guide ↔ customer: who added whom, when, through which state, and whether it ended."""

    __tablename__ = "wecom_follows"
    __table_args__ = (UniqueConstraint("userid", "external_userid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    external_userid: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    state: Mapped[str | None] = mapped_column(String(30), index=True, default=None)
    remark: Mapped[str | None] = mapped_column(String(128), default=None)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # "customer" (del_follow_user: the customer deleted the guide: a churn signal) or "guide"
    deleted_by: Mapped[str | None] = mapped_column(String(16), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeComGroup(Base):
    __tablename__ = "wecom_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeComGroupMember(Base):
    """Membership of a customer group; a left member keeps its row with left_at."""

    __tablename__ = "wecom_group_members"
    __table_args__ = (UniqueConstraint("chat_id", "member_userid"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    member_userid: Mapped[str] = mapped_column(String(64))
    member_type: Mapped[int] = mapped_column(Integer, default=2)  # 1 staff, 2 external contact
    member_id: Mapped[int | None] = mapped_column(BigId, default=None)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WeComCorpTag(Base):
    """A WeCom corp tag and the siyu tag it mirrors (tags.Tag id)."""

    __tablename__ = "wecom_corp_tags"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str] = mapped_column(String(64), index=True)
    group_name: Mapped[str] = mapped_column(String(64))
    siyu_tag_id: Mapped[int | None] = mapped_column(BigId, default=None)
    deleted: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WelcomeStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by a worker, WeCom's answer not yet recorded
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    LATE = "late"  # the worker saw the add more than 20 s after it happened: not sent


class WeComWelcome(Base):
    """One welcome message per WelcomeCode: the unique key is what makes it exactly once."""

    __tablename__ = "wecom_welcomes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    welcome_code: Mapped[str] = mapped_column(String(128), unique=True)
    userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(64))
    code_id: Mapped[int | None] = mapped_column(BigId, default=None)
    # indexed for the sweep of welcomes a stopped worker left claimed (welcome.py)
    status: Mapped[str] = mapped_column(String(16), default=WelcomeStatus.PENDING, index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class SendKind(StrEnum):
    SINGLE = "single"  # 1:1 mass message (add_msg_template chat_type=single)
    GROUP = "group"  # to customer groups (chat_type=group)
    MOMENT = "moment"  # add_moment_task


class SendStatus(StrEnum):
    CREATING = "creating"  # guide task written, WeCom task not yet created
    PUSHING = "pushing"  # a worker is creating the WeCom task; recipients are frozen
    WAITING = "waiting"  # WeCom task created, the guide has not confirmed
    SENT = "sent"
    FAILED = "failed"


class WeComSendTask(Base):
    """A staff-confirmed WeCom send for one guide, tracked until WeCom reports the result."""

    __tablename__ = "wecom_send_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    userid: Mapped[str] = mapped_column(String(64), index=True)
    guide_task_id: Mapped[int | None] = mapped_column(BigId, default=None)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    msgid: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    jobid: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    moment_id: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(16), default=SendStatus.CREATING)
    # when a worker moved it to `pushing`: a push older than that never finished (sends.py)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reminders: Mapped[list[str]] = mapped_column(JSON, default=list)  # ISO instants, last 24 h rule
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class WeComSendRecipient(Base):
    """A customer (or group) of a send task and WeCom's per-recipient result."""

    __tablename__ = "wecom_send_recipients"
    __table_args__ = (UniqueConstraint("send_task_id", "target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    send_task_id: Mapped[int] = mapped_column(BigId, index=True)
    target: Mapped[str] = mapped_column(String(64))  # external_userid or chat_id
    member_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM (business tz), for the monthly budget
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sent|not_friend|limited
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SubscribeGrant(Base):
    """One accepted mini-program subscription (一次性订阅): allows exactly one send."""

    __tablename__ = "wecom_subscribe_grants"
    __table_args__ = (
        Index("ix_wecom_subscribe_grants_open", "openid", "template_id", "consumed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int | None] = mapped_column(BigId, default=None)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    consumed_by: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
