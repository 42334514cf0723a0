"""Growth tables: channel codes (活码) and who gets credit for each new customer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class CodeScope(StrEnum):
    STORE = "store"
    GUIDE = "guide"
    CAMPAIGN = "campaign"


class ChannelCode(Base):
    """A WeCom contact way: `state` (≤ 30 chars) comes back on every add; keep `config_id`."""

    __tablename__ = "growth_channel_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(30), unique=True)
    store_code: Mapped[str | None] = mapped_column(String(32), default=None)
    campaign: Mapped[str | None] = mapped_column(String(64), default=None)
    userids: Mapped[list[str]] = mapped_column(JSON)
    config_id: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    qr_code: Mapped[str | None] = mapped_column(String(512), default=None)
    welcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    auto_tags: Mapped[list[str]] = mapped_column(JSON, default=list)  # WeCom corp tag ids
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Attribution(Base):
    """Who gets credit for a member: the first code, guide and store that brought them in."""

    __tablename__ = "growth_attributions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, unique=True)
    code_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    store_code: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    attributed_at: Mapped[datetime] = mapped_column(UTCDateTime)
