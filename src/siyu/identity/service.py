"""Use cases of identity: find and explain members, count them, rebuild OneID, list pollution.

`find_member_by_identity` accepts what an operator types: a phone in any format, a member_no,
unionid, external_userid, openid, or an explicit `type:value`. A merged-away member's values
resolve to the survivor. A released value (a phone that changed owner) is only found when no
current owner exists, and then points at its last owner.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.identity import oneid
from siyu.identity.errors import IdentityNotUnderstoodError, MemberNotFoundError
from siyu.identity.models import Identity, IdentityObservation, Member, MemberMerge
from siyu.identity.oneid import table_of
from siyu.identity.phones import normalize_phone
from siyu.identity.rebuild import rebuild_all
from siyu.identity.regroup import line_evidence_columns
from siyu.orders.models import OrderLine

KNOWN_TYPES = ("member_no", "phone", "unionid", "openid", "external_userid", "pos_id")
GUESS_ORDER = ("member_no", "unionid", "external_userid", "openid", "pos_id")
RECORDS_SHOWN = 20  # records listed per identity in an explanation


def candidate_keys(identity: str) -> list[oneid.Key]:
    """What an operator's input may mean, most specific first."""
    text = identity.strip()
    if not text:
        raise IdentityNotUnderstoodError(identity, "empty")
    kind, sep, value = text.partition(":")
    if kind == "openid" and ":" in value:  # openid:<appid>:<value>
        appid, _, value = value.partition(":")
        kind = f"openid:{appid}"
    if sep and (kind in KNOWN_TYPES or kind.startswith("openid:")):
        if kind == "phone":
            phone = normalize_phone(value)
            if phone is None:
                raise IdentityNotUnderstoodError(identity, "not a valid mobile number")
            return [("phone", phone)]
        return [(kind, value.strip())]
    keys: list[oneid.Key] = []
    phone = normalize_phone(text)
    if phone is not None:
        keys.append(("phone", phone))
    keys.extend((kind, text) for kind in GUESS_ORDER)
    return keys


def _lookup(session: Session, identity: str) -> int:
    for kind, value in candidate_keys(identity):
        member_id = session.scalar(
            sa.select(Identity.member_id)
            .where(Identity.type == kind, Identity.value == value)
            .order_by(Identity.released_at.is_not(None), Identity.id.desc())
            .limit(1)
        )
        if member_id is not None:
            return oneid.survivor_of(session, member_id)
    raise MemberNotFoundError(identity)


def find_member_by_identity(*, session_factory: sessionmaker[Session], identity: str) -> int:
    """The surviving member id for any identity value an operator can type."""
    with session_factory() as session:
        return _lookup(session, identity)


def resolve_member_id(*, session_factory: sessionmaker[Session], member_id: int) -> int:
    """An old (merged-away) member id resolves to its survivor."""
    with session_factory() as session:
        if session.get(Member, member_id) is None:
            raise MemberNotFoundError(f"member id {member_id}")
        return oneid.survivor_of(session, member_id)


def count_members(*, session_factory: sessionmaker[Session]) -> int:
    """Real people: members that were not merged away and not erased."""
    with session_factory() as session:
        statement = sa.select(sa.func.count()).where(
            Member.merged_into_id.is_(None), Member.erased_at.is_(None)
        )
        return int(session.scalar(statement) or 0)


@dataclass
class MemberExplanation:
    """A member, its identity values with the records that brought them, and its merges."""

    member: dict[str, Any]
    identities: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_member(*, session_factory: sessionmaker[Session], identity: str) -> MemberExplanation:
    """Which identities joined which records into this member, and which merges made it."""
    with session_factory() as session:
        member_id = _lookup(session, identity)
        member = session.get(Member, member_id)
        assert member is not None  # _lookup only returns stored ids
        explanation = MemberExplanation(member=_member_dict(member))
        explanation.identities = _identities_of(session, member_id)
        explanation.merges = _merges_into(session, member_id)
        return explanation


def _member_dict(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "gender": member.gender,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "registered_at": _iso(member.registered_at),
        "store_code": member.store_code,
        "channel": member.channel,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _identities_of(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        sa.select(Identity)
        .where(Identity.member_id == member_id)
        .order_by(Identity.type, Identity.value)
    ).all()
    lines = _lines_by_identity(session, member_id)
    found = []
    for row in rows:
        observed = session.execute(
            sa.select(IdentityObservation.record_kind, IdentityObservation.record_key)
            .where(IdentityObservation.identity_id == row.id)
            .order_by(IdentityObservation.record_kind, IdentityObservation.record_key)
            .limit(RECORDS_SHOWN)
        ).all()
        records = sorted([*observed, *(("order", key) for key in lines.get(row.id, ()))])
        found.append(
            {
                "type": row.type,
                "value": row.value,
                "polluted": row.polluted,
                "released_at": _iso(row.released_at),
                "records": [f"{kind}:{key}" for kind, key in records[:RECORDS_SHOWN]],
            }
        )
    return found


def _lines_by_identity(session: Session, member_id: int) -> dict[int, list[str]]:
    """The member's order lines (`order_id:line_no`) by the identity ids they carry.

    Decided: an explanation lists the member's own lines only; lines keep their evidence in
    columns with no index by identity, and a value's lines on other members (a polluted phone)
    are not what explains this member."""
    lines = table_of(OrderLine)
    statement = sa.select(lines.c.order_id, lines.c.line_no, *line_evidence_columns(lines)).where(
        lines.c.member_id == member_id
    )
    found: dict[int, list[str]] = defaultdict(list)
    for order_id, line_no, *ids in session.execute(statement):
        for identity_id in ids:
            if identity_id is not None:
                found[identity_id].append(f"{order_id}:{line_no}")
    return found


def _merges_into(session: Session, member_id: int) -> list[dict[str, Any]]:
    """Every merge whose chain ends at this member, oldest first."""
    ids, frontier = {member_id}, [member_id]
    merges: list[MemberMerge] = []
    while frontier:
        rows = session.scalars(
            sa.select(MemberMerge).where(MemberMerge.survivor_id.in_(frontier))
        ).all()
        merges.extend(rows)
        frontier = [r.merged_id for r in rows if r.merged_id not in ids]
        ids.update(frontier)
    return [
        {
            "survivor_id": m.survivor_id,
            "merged_id": m.merged_id,
            "via": f"{m.via_type}:{m.via_value}",
            "record": (m.detail or {}).get("record"),
            "reason": m.reason,
            "merged_at": m.merged_at.isoformat(),
        }
        for m in sorted(merges, key=lambda m: m.id)
    ]


def rebuild_identities(
    *, session_factory: sessionmaker[Session], now: datetime, max_member_nos: int
) -> dict[str, int]:
    """Full OneID rebuild: recount pollution and regroup every stored record (one transaction)."""
    with session_factory() as session:
        outcome = rebuild_all(session, now=now, max_member_nos=max_member_nos)
        session.commit()
    return asdict(outcome)


def list_polluted(*, session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Polluted values (placeholder phones, test unionids) with how many member_nos share them."""
    with session_factory() as session:
        rows = session.execute(
            sa.select(Identity.id, Identity.type, Identity.value)
            .where(Identity.polluted.is_(True))
            .order_by(Identity.type, Identity.value)
        ).all()
        counts = oneid.member_nos_of(session, [row.id for row in rows])
        return [
            {"type": row.type, "value": row.value, "member_nos": len(counts.get(row.id, ()))}
            for row in rows
        ]
