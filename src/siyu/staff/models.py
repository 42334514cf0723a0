"""Stores and staff. Attribution, tasks and leaderboards build on these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(64), default=None)
    region: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    kind: Mapped[str] = mapped_column(String(16), default="direct")  # direct | franchise | online
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Staff(Base):
    """A guide, store manager, supervisor or HQ operator. `staff_no` is the WeCom userid."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_no: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="guide")
    store_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("stores.id"), index=True, default=None
    )
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
