"""What the access domain hands to adapters: roles and a read view of a console user."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    HQ = "hq"
    SUPERVISOR = "supervisor"
    GUIDE = "guide"
    ANALYST = "analyst"  # read-only


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    username: str
    display_name: str
    role: Role
    staff_id: int | None
    region: str | None
    active: bool
    last_login_at: datetime | None
