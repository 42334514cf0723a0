"""The read side of members: search, the member 360 and a member's orders.

Decisions:
- A search term is tried as every identity it could be — a phone in any format (normalised),
  member_no, unionid, external_userid, openid (any app), pos_id — and as a name prefix;
  the matches are merged, resolved to surviving members, and paged by member id.
- A merged-away member id or identity resolves to the survivor (`Member.merged_into_id`);
  `MemberDetail.requested_id` keeps what was asked for.
- Every read takes an optional `viewer` (access.scope): a guide or supervisor only finds the
  members in their scope, and a member outside it is reported as not found (issue #8).
- Personal values are masked here, by viewer, so every adapter agrees: phones for every role
  but HQ, names for analysts; the full values come from the audited reveal (privacy.reveal).
- Erased members (PIPL) are not found by search; by id they still resolve (their personal
  fields are already empty).
- A member's phone/member_no shown in lists is its current (not released) identity, lowest id
  first; polluted values (placeholder phones) are shown but flagged in the 360.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer, may_see_member, visible_members
from siyu.identity import oneid
from siyu.identity.errors import IdentityNotUnderstoodError, MemberNotFoundError
from siyu.identity.masking import mask_name, mask_phone
from siyu.identity.models import Identity, Member, MemberMerge
from siyu.identity.phones import normalize_phone
from siyu.identity.schemas import (
    IdentityRead,
    MemberDetail,
    MemberPage,
    MemberSummary,
    MemberTagRead,
    MergeRead,
    OrderLineRead,
    OrderPage,
    OrderRead,
)
from siyu.orders.models import OrderLine
from siyu.tags.models import MemberTag, Tag, TagGroup

MAX_PAGE_SIZE = 200
IDENTITY_TYPES = ("member_no", "phone", "unionid", "openid", "external_userid", "pos_id")
_EXACT_TYPES = ("member_no", "unionid", "external_userid", "pos_id")


def search_members(
    *,
    session_factory: sessionmaker[Session],
    query: str | None,
    page: int = 1,
    page_size: int = 20,
    viewer: Viewer | None = None,
) -> MemberPage:
    """Members matching any identity value or a name prefix (all live members when no query)."""
    page, page_size = max(1, page), min(max(1, page_size), MAX_PAGE_SIZE)
    term = (query or "").strip()
    with session_factory() as session:
        live = sa.and_(Member.merged_into_id.is_(None), Member.erased_at.is_(None))
        where = live
        if term:
            ids = _members_by_any_identity(session, term)
            by_name = Member.name.like(_escape_like(term) + "%", escape="\\")
            where = sa.and_(live, sa.or_(Member.id.in_(ids), by_name) if ids else by_name)
        scoped = visible_members(viewer, Member.id)
        if scoped is not None:
            where = sa.and_(where, scoped)
        total = session.scalar(sa.select(sa.func.count()).select_from(Member).where(where)) or 0
        rows = session.scalars(
            sa.select(Member)
            .where(where)
            .order_by(Member.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        summaries = [_mask_summary(s, viewer) for s in _summaries(session, list(rows))]
    return MemberPage(items=summaries, total=total, page=page, page_size=page_size)


def summaries_of(
    *, session_factory: sessionmaker[Session], member_ids: list[int], viewer: Viewer | None
) -> dict[int, MemberSummary]:
    """List rows (masked for the viewer) of these members, those in scope only (task lists)."""
    if not member_ids:
        return {}
    with session_factory() as session:
        where: sa.ColumnElement[bool] = Member.id.in_(sorted(set(member_ids)))
        scoped = visible_members(viewer, Member.id)
        if scoped is not None:
            where = sa.and_(where, scoped)
        rows = session.scalars(sa.select(Member).where(where).order_by(Member.id)).all()
        return {s.id: _mask_summary(s, viewer) for s in _summaries(session, list(rows))}


def _mask_summary(summary: MemberSummary, viewer: Viewer | None) -> MemberSummary:
    """Phones masked for every role but HQ, names for analysts (issue #8; reveal is audited)."""
    if viewer is None or viewer.sees_full_pii:
        return summary
    name = summary.name if viewer.sees_names else mask_name(summary.name)
    return summary.model_copy(update={"phone": mask_phone(summary.phone) or None, "name": name})


def _mask_detail(detail: MemberDetail, viewer: Viewer | None) -> MemberDetail:
    if viewer is None or viewer.sees_full_pii:
        return detail
    identities = [
        i.model_copy(update={"value": mask_phone(i.value)}) if i.type == "phone" else i
        for i in detail.identities
    ]
    merges = [
        m.model_copy(update={"via_value": mask_phone(m.via_value)}) if m.via_type == "phone" else m
        for m in detail.merges
    ]
    name = detail.name if viewer.sees_names else mask_name(detail.name)
    return detail.model_copy(
        update={"phone": mask_phone(detail.phone) or None, "name": name,
                "identities": identities, "merges": merges}
    )  # fmt: skip


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _members_by_any_identity(session: Session, term: str) -> set[int]:
    conditions = [sa.and_(Identity.type.in_(_EXACT_TYPES), Identity.value == term)]
    conditions.append(sa.and_(Identity.type.like("openid%"), Identity.value == term))
    phone = normalize_phone(term)
    if phone is not None:
        conditions.append(sa.and_(Identity.type == "phone", Identity.value == phone))
    found = session.scalars(
        sa.select(Identity.member_id).where(sa.or_(*conditions), Identity.released_at.is_(None))
    ).all()
    return {oneid.survivor_of(session, member_id) for member_id in set(found)}


def _summaries(session: Session, members: list[Member]) -> list[MemberSummary]:
    shown = _first_identities(session, [m.id for m in members], ("phone", "member_no"))
    return [
        MemberSummary(
            id=m.id,
            member_no=shown.get((m.id, "member_no")),
            name=m.name,
            phone=shown.get((m.id, "phone")),
            gender=m.gender,
            store_code=m.store_code,
            channel=m.channel,
            registered_at=m.registered_at,
        )
        for m in members
    ]


def _first_identities(
    session: Session, member_ids: list[int], types: tuple[str, ...]
) -> dict[tuple[int, str], str]:
    if not member_ids:
        return {}
    rows = session.execute(
        sa.select(Identity.member_id, Identity.type, Identity.value)
        .where(
            Identity.member_id.in_(member_ids),
            Identity.type.in_(types),
            Identity.released_at.is_(None),
        )
        .order_by(Identity.id)
    )
    first: dict[tuple[int, str], str] = {}
    for member_id, kind, value in rows:
        first.setdefault((member_id, kind), value)
    return first


def get_member(
    *, session_factory: sessionmaker[Session], member_id: int, viewer: Viewer | None = None
) -> MemberDetail:
    """The member 360 for an id; a merged-away id shows its survivor."""
    with session_factory() as session:
        if session.get(Member, member_id) is None:
            raise MemberNotFoundError(f"member id {member_id}")
        return _detail(session, requested_id=member_id, viewer=viewer)


def get_member_by_identity(
    *,
    session_factory: sessionmaker[Session],
    identity_type: str,
    value: str,
    viewer: Viewer | None = None,
) -> MemberDetail:
    """The member 360 for one typed identity (`phone` in any format, `openid:<appid>`, …)."""
    kind, lookup = _typed_key(identity_type, value)
    with session_factory() as session:
        member_id = session.scalar(
            sa.select(Identity.member_id)
            .where(Identity.type == kind, Identity.value == lookup)
            .order_by(Identity.released_at.is_not(None), Identity.id.desc())
            .limit(1)
        )
        if member_id is None:
            raise MemberNotFoundError(f"{identity_type}:{value}")
        return _detail(session, requested_id=member_id, viewer=viewer)


def _typed_key(identity_type: str, value: str) -> tuple[str, str]:
    kind, text = identity_type.strip(), value.strip()
    if kind not in IDENTITY_TYPES and not kind.startswith("openid:"):
        why = f"unknown identity type; one of {', '.join(IDENTITY_TYPES)} or openid:<appid>"
        raise IdentityNotUnderstoodError(f"{identity_type}:{value}", why)
    if kind == "phone":
        phone = normalize_phone(text)
        if phone is None:
            raise IdentityNotUnderstoodError(f"phone:{value}", "not a valid mobile number")
        return kind, phone
    return kind, text


def _detail(session: Session, *, requested_id: int, viewer: Viewer | None = None) -> MemberDetail:
    member_id = oneid.survivor_of(session, requested_id)
    if not may_see_member(session, viewer, member_id):
        # Same answer as a missing member: another guide's customer must not be confirmed.
        raise MemberNotFoundError(f"member id {requested_id}")
    member = session.get(Member, member_id)
    assert member is not None  # survivor_of only follows existing foreign keys
    identities = _identities(session, member_id)
    current = [i for i in identities if i.current]
    orders, spend = _order_totals(session, member_id)
    detail = MemberDetail(
        id=member_id,
        requested_id=requested_id,
        name=member.name,
        gender=member.gender,
        birthday=member.birthday,
        registered_at=member.registered_at,
        store_code=member.store_code,
        channel=member.channel,
        member_nos=[i.value for i in current if i.type == "member_no"],
        phone=next((i.value for i in current if i.type == "phone" and not i.polluted), None),
        identities=identities,
        tags=_tags(session, member_id),
        merges=_merges(session, member_id),
        orders=orders,
        spend=spend,
    )
    return _mask_detail(detail, viewer)


def _identities(session: Session, member_id: int) -> list[IdentityRead]:
    rows = session.scalars(
        sa.select(Identity)
        .where(Identity.member_id == member_id)
        .order_by(Identity.type, Identity.id)
    )
    return [
        IdentityRead(
            type=row.type,
            value=row.value,
            polluted=row.polluted,
            current=row.released_at is None,
            first_seen_at=row.first_seen_at,
        )
        for row in rows
    ]


def _tags(session: Session, member_id: int) -> list[MemberTagRead]:
    rows = session.execute(
        sa.select(TagGroup.name, Tag.name, MemberTag.source, MemberTag.tagged_at)
        .join(Tag, Tag.id == MemberTag.tag_id)
        .join(TagGroup, TagGroup.id == Tag.group_id)
        .where(MemberTag.member_id == member_id)
        .order_by(TagGroup.name, Tag.name)
    )
    return [
        MemberTagRead(tag=f"{group}:{name}", source=source, tagged_at=at)
        for group, name, source, at in rows
    ]


def _merges(session: Session, member_id: int) -> list[MergeRead]:
    """Every merge that folded some member into this one, including merges into members that
    were themselves merged here later (the whole chain)."""
    chain = {member_id}
    frontier = [member_id]
    while frontier:
        merged = session.scalars(
            sa.select(MemberMerge.merged_id).where(MemberMerge.survivor_id.in_(frontier))
        ).all()
        frontier = [m for m in merged if m not in chain]
        chain.update(frontier)
    rows = session.scalars(
        sa.select(MemberMerge)
        .where(MemberMerge.survivor_id.in_(chain))
        .order_by(MemberMerge.merged_at, MemberMerge.id)
    )
    return [
        MergeRead(
            merged_id=row.merged_id,
            survivor_id=row.survivor_id,
            via_type=row.via_type,
            via_value=row.via_value,
            reason=row.reason,
            merged_at=row.merged_at,
        )
        for row in rows
    ]


def _order_totals(session: Session, member_id: int) -> tuple[int, Decimal]:
    """Paid orders without any refunded line, and their total (DESIGN §4.5)."""
    refunded = (
        sa.select(OrderLine.order_id)
        .where(OrderLine.member_id == member_id, OrderLine.status == "refunded")
        .distinct()
    )
    orders, spend = session.execute(
        sa.select(
            sa.func.count(sa.distinct(OrderLine.order_id)), sa.func.sum(OrderLine.amount)
        ).where(OrderLine.member_id == member_id, OrderLine.order_id.not_in(refunded))
    ).one()
    return int(orders or 0), Decimal(spend or 0).quantize(Decimal("0.01"))


def member_orders(
    *,
    session_factory: sessionmaker[Session],
    member_id: int,
    page: int = 1,
    page_size: int = 20,
    viewer: Viewer | None = None,
) -> OrderPage:
    """The member's orders, newest first, each with its lines (refunded orders included)."""
    page, page_size = max(1, page), min(max(1, page_size), MAX_PAGE_SIZE)
    with session_factory() as session:
        if session.get(Member, member_id) is None:
            raise MemberNotFoundError(f"member id {member_id}")
        survivor = oneid.survivor_of(session, member_id)
        if not may_see_member(session, viewer, survivor):
            raise MemberNotFoundError(f"member id {member_id}")
        mine = OrderLine.member_id == survivor
        total = session.scalar(
            sa.select(sa.func.count(sa.distinct(OrderLine.order_id))).where(mine)
        )
        newest = (
            sa.select(OrderLine.order_id, sa.func.min(OrderLine.paid_at).label("paid_at"))
            .where(mine)
            .group_by(OrderLine.order_id)
            .order_by(sa.desc("paid_at"), OrderLine.order_id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        order_ids = [row.order_id for row in session.execute(newest)]
        lines = session.scalars(
            sa.select(OrderLine)
            .where(mine, OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        ).all()
    by_order: dict[str, list[OrderLine]] = defaultdict(list)
    for line in lines:
        by_order[line.order_id].append(line)
    items = [_order(order_id, by_order[order_id]) for order_id in order_ids]
    return OrderPage(items=items, total=int(total or 0), page=page, page_size=page_size)


def _order(order_id: str, lines: list[OrderLine]) -> OrderRead:
    first = lines[0]
    return OrderRead(
        order_id=order_id,
        paid_at=min(line.paid_at for line in lines),
        store_code=first.store_code,
        channel=first.channel,
        amount=sum((line.amount for line in lines), Decimal(0)),
        refunded=any(line.status == "refunded" for line in lines),
        lines=[
            OrderLineRead(
                line_no=line.line_no,
                amount=line.amount,
                status=line.status,
                category=line.category,
                sku=line.sku,
            )
            for line in lines
        ],
    )
