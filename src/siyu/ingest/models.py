"""Inbound events, dead letters and the record of each import run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class Event(Base):
    """A behavioural event (page view, share, sign-in, WeCom add…) identified by its event_id."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_member_type_at", "member_id", "type", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    member_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"), default=None)
    identities: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    properties: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeadLetter(Base):
    """An inbound row or message we could not accept, with the reason; never silently dropped."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    reference: Mapped[str | None] = mapped_column(String(160), default=None)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(512))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    rejected_file: Mapped[str | None] = mapped_column(String(512), default=None)
