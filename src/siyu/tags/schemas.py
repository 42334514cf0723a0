"""What the tags use cases return and accept (also the API's JSON bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class TagGroupView(BaseModel):
    name: str
    exclusive: bool
    tags: list[str] = Field(default_factory=list)


class TagView(BaseModel):
    tag: str  # `group:name`
    group: str
    name: str
    exclusive: bool
    rule: dict[str, Any] | None = None
    members: int = 0


class MemberTagView(BaseModel):
    tag: str
    source: str  # manual | rule | journey | wecom | import
    tagged_by: str | None
    tagged_at: datetime


class TagChange(BaseModel):
    """The outcome of one manual tag/untag: what was added and what was removed."""

    member_id: int
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class RuleTagOutcome(BaseModel):
    tag: str
    members: int
    added: int
    removed: int


class RecomputeResult(BaseModel):
    tags: list[RuleTagOutcome] = Field(default_factory=list)


class NewTagGroup(BaseModel):
    name: str
    exclusive: bool = False


class NewTag(BaseModel):
    tag: str
    rule: dict[str, Any] | None = None


class TagAssignment(BaseModel):
    tag: str
