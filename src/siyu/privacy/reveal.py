"""The deliberate, audited "reveal" of a member's full phone numbers and name.

Lists and the member 360 show personal values masked for every role but HQ (identity.queries
masks by Viewer). A guide about to call a customer, or a supervisor resolving a complaint,
presses "reveal": the full values are returned once and an audit row (`pii.reveal`, who, which
member, which fields) is written in the same transaction — no audit row, no values. Analysts
may not reveal; guides and supervisors only members in their scope (out of scope = not found,
as everywhere else). HQ may reveal too (the audit trail then shows that they looked).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer, may_see_member
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction
from siyu.identity import oneid
from siyu.identity.errors import MemberNotFoundError
from siyu.identity.models import Identity, Member
from siyu.privacy.errors import PrivacyError, PrivacyErrorCode


@dataclass(frozen=True)
class Revealed:
    member_id: int
    name: str | None
    phones: tuple[str, ...]


def reveal_member(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    member_id: int,
    viewer: Viewer,
    reason: str | None = None,
) -> Revealed:
    """The member's full name and current phones, audited as `pii.reveal`."""
    if not viewer.may_reveal:
        raise PrivacyError(PrivacyErrorCode.NOT_ALLOWED, f"the {viewer.role} role may not reveal")
    now = clock.now()
    with transaction(session_factory) as session:
        if session.get(Member, member_id) is None:
            raise MemberNotFoundError(f"member id {member_id}")
        survivor = oneid.survivor_of(session, member_id)
        member = session.get_one(Member, survivor)
        if member.erased_at is not None or not may_see_member(session, viewer, survivor):
            raise MemberNotFoundError(f"member id {member_id}")
        phones = tuple(
            session.scalars(
                sa.select(Identity.value)
                .where(Identity.member_id == survivor, Identity.type == "phone")
                .where(Identity.released_at.is_(None))
                .order_by(Identity.id)
            )
        )
        audit_service.record(
            db_session=session, now=now, actor=viewer.actor, action="pii.reveal",
            entity_type="member", entity_id=survivor,
            detail={"fields": ["name", "phone"], "role": viewer.role.value, "reason": reason},
        )  # fmt: skip
        return Revealed(member_id=survivor, name=member.name, phones=phones)
