"""Saved segments and their snapshots (ADR 0002: member-id sets as roaring bitmaps).

A snapshot row is one evaluation at an instant: the member count (the count history), who
entered and who left since the previous snapshot, and — for the most recent snapshots only —
the full member set. Older rows keep counts and diffs; their full bitmap is pruned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[str] = mapped_column(String(16), default="daily")  # manual | hourly | daily
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SegmentSnapshot(Base):
    __tablename__ = "segment_snapshots"
    # One evaluation per instant: a refresh replayed at the same instant adds nothing.
    __table_args__ = (UniqueConstraint("segment_id", "taken_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    member_count: Mapped[int] = mapped_column(Integer)
    entered_count: Mapped[int] = mapped_column(Integer)
    exited_count: Mapped[int] = mapped_column(Integer)
    members: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    entered: Mapped[bytes] = mapped_column(LargeBinary)
    exited: Mapped[bytes] = mapped_column(LargeBinary)
    data_version: Mapped[str] = mapped_column(String(64), default="")
    definition_hash: Mapped[str] = mapped_column(String(64))
    elapsed_ms: Mapped[int] = mapped_column(Integer, default=0)
