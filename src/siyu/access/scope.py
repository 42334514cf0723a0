"""Who is looking: the `Viewer` every scoped domain read and write takes.

Roles and what they may see (issue #8):
- hq: everything; analyst: everything, read-only and with personal values masked;
- supervisor: the stores of their region and the members owned by those stores;
- guide: their own members (owner guide) and their own tasks.
Scoping is decided in the domain services that take a Viewer, so the API, CLI and console
cannot disagree. The CLI runs as the operator of the machine: `Viewer.system()` (hq).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from siyu.access.schemas import Role, UserRead


@dataclass(frozen=True)
class Viewer:
    role: Role
    actor: str
    staff_id: int | None = None
    region: str | None = None

    @classmethod
    def system(cls, actor: str = "system") -> Viewer:
        return cls(role=Role.HQ, actor=actor)

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.HQ, Role.ANALYST)

    @property
    def may_write(self) -> bool:
        return self.role != Role.ANALYST

    @property
    def sees_full_pii(self) -> bool:
        """Full phones without a reveal: only HQ (everyone else reveals, audited)."""
        return self.role == Role.HQ

    @property
    def sees_names(self) -> bool:
        """Names: guides and supervisors greet their customers by name; analysts never."""
        return self.role != Role.ANALYST

    @property
    def may_reveal(self) -> bool:
        """Whether the audited reveal of a member's full phone and name is open to this role."""
        return self.role != Role.ANALYST


_owners = sa.table(
    "member_owners", sa.column("member_id"), sa.column("guide_id"), sa.column("store_id")
)
_stores = sa.table("stores", sa.column("id"), sa.column("region"))


def visible_members(viewer: Viewer | None, member_id: Any) -> ColumnElement[bool] | None:
    """A WHERE clause limiting `member_id` to the members this viewer may see (None: all).

    A guide sees the members they own; a supervisor the members owned by a store of their
    region. A guide or supervisor without a staff id or region sees nobody (fail closed).
    """
    return _scoped(
        viewer,
        member_id,
        own=lambda staff_id: sa.select(_owners.c.member_id).where(_owners.c.guide_id == staff_id),
        region=lambda region: (
            sa.select(_owners.c.member_id)
            .join(_stores, _stores.c.id == _owners.c.store_id)
            .where(_stores.c.region == region)
        ),
    )


_staff = sa.table("staff", sa.column("id"), sa.column("staff_no"), sa.column("store_id"))


def visible_staff_nos(viewer: Viewer | None, staff_no: Any) -> ColumnElement[bool] | None:
    """A WHERE clause limiting `staff_no` (a guide's staff number = WeCom userid) to the staff
    whose work this viewer may see (None: all): a guide themself, a supervisor the staff of
    their region's stores; fail closed like `visible_members`."""
    return _scoped(
        viewer,
        staff_no,
        own=lambda staff_id: sa.select(_staff.c.staff_no).where(_staff.c.id == staff_id),
        region=lambda region: (
            sa.select(_staff.c.staff_no)
            .join(_stores, _stores.c.id == _staff.c.store_id)
            .where(_stores.c.region == region)
        ),
    )


def _scoped(
    viewer: Viewer | None,
    column: Any,
    *,
    own: Callable[[int], sa.Select[Any]],
    region: Callable[[str], sa.Select[Any]],
) -> ColumnElement[bool] | None:
    """`column IN own(staff id)` for a guide, `IN region(region)` for a supervisor, nothing
    for HQ and analysts, false for a guide/supervisor missing their staff id/region."""
    if viewer is None or viewer.sees_everything:
        return None
    if viewer.role is Role.GUIDE and viewer.staff_id is not None:
        return column.in_(own(viewer.staff_id))  # type: ignore[no-any-return]
    if viewer.role is Role.SUPERVISOR and viewer.region is not None:
        return column.in_(region(viewer.region))  # type: ignore[no-any-return]
    return sa.false()


def may_see_member(session: Session, viewer: Viewer | None, member_id: int) -> bool:
    clause = visible_members(viewer, _owners.c.member_id)
    if clause is None:
        return True
    probe = sa.select(sa.literal(1)).where(sa.literal(member_id).in_(
        sa.select(_owners.c.member_id).where(clause)
    ))  # fmt: skip
    return session.scalar(probe) is not None


def viewer_of_user(user: UserRead) -> Viewer:
    """The viewer a signed-in console user acts as."""
    return Viewer(role=user.role, actor=user.username, staff_id=user.staff_id, region=user.region)
