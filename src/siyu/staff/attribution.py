"""Who owns a member: the owner guide and store (see `attribute_members` for the rules)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from siyu.staff.models_guides import MemberOwner


@dataclass(frozen=True)
class Owner:
    member_id: int
    guide_id: int | None
    store_id: int | None
    rule: str
    manual: bool


def owner_of(session: Session, *, member_id: int) -> Owner | None:
    """The member's current owner, or None when no rule has attributed them yet."""
    row = session.get(MemberOwner, member_id)
    if row is None:
        return None
    return Owner(
        member_id=row.member_id,
        guide_id=row.guide_id,
        store_id=row.store_id,
        rule=row.rule,
        manual=row.manual,
    )
