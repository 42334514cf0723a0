"""Tag groups mirror WeCom corp tag groups; a tag is written `group:name` in the segment DSL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class TagGroup(Base):
    __tablename__ = "tag_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    exclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    wecom_group_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(BigId, ForeignKey("tag_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    rule: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    wecom_tag_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MemberTag(Base):
    __tablename__ = "member_tags"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("tags.id"), primary_key=True, index=True)
    source: Mapped[str] = mapped_column(
        String(16), default="manual"
    )  # manual | rule | wecom | import
    tagged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    tagged_at: Mapped[datetime] = mapped_column(UTCDateTime)
