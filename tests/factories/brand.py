"""The "Demo Tea" brand personas as operational rows: store SH001, guide Xiao Li, member Wang
Fang (phone, member_no, unionid; two orders, one with two lines) and console users.

Rows are written directly (not through import) so tests of the read side and the console do
not depend on the import pipeline; identities mirror what OneID writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from siyu.access import service as access_service
from siyu.access.schemas import Role, UserRead
from siyu.clock import Clock
from siyu.db import transaction
from siyu.identity.models import Identity, Member, MemberMerge
from siyu.orders.models import OrderLine
from siyu.staff.models import Staff, Store

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WANG_FANG_PHONE = "13812345678"
PASSWORD = "tea-leaves-2026"


@dataclass(frozen=True)
class WangFang:
    member_id: int
    phone: str = WANG_FANG_PHONE
    member_no: str = "M0001"
    unionid: str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


def store_sh001(session: Session) -> Store:
    row = Store(
        code="SH001", name="Demo Tea 南京西路", city="Shanghai", region="East", created_at=T0
    )
    session.add(row)
    session.flush()
    return row


def guide_xiao_li(session: Session, *, store: Store) -> Staff:
    row = Staff(staff_no="xiaoli", name="Xiao Li", role="guide", store_id=store.id, joined_at=T0)
    session.add(row)
    session.flush()
    return row


def add_member(
    session: Session,
    *,
    name: str,
    identities: dict[str, str],
    at: datetime = T0,
    gender: str = "F",
    store_code: str = "SH001",
) -> Member:
    """A member with its current identity values (type → value)."""
    row = Member(
        name=name,
        gender=gender,
        registered_at=at,
        store_code=store_code,
        channel="pos",
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    for kind, value in identities.items():
        session.add(Identity(type=kind, value=value, member_id=row.id, first_seen_at=at))
    session.flush()
    return row


def add_order(
    session: Session,
    *,
    member_id: int,
    order_id: str,
    lines: list[tuple[str, str, str]],
    paid_at: datetime = T0,
    status: str = "paid",
) -> None:
    """One order; each line is (amount, category, sku)."""
    for line_no, (amount, category, sku) in enumerate(lines, start=1):
        session.add(
            OrderLine(
                order_id=order_id,
                line_no=line_no,
                member_id=member_id,
                store_code="SH001",
                channel="pos",
                paid_at=paid_at,
                amount=Decimal(amount),
                status=status,
                category=category,
                sku=sku,
                row_hash=f"{order_id}-{line_no}",
                imported_at=paid_at,
            )
        )
    session.flush()


def wang_fang(session: Session) -> WangFang:
    """Wang Fang: phone, member_no M0001 and a unionid; two paid orders (¥78 + ¥45.50)."""
    persona = WangFang(member_id=0)
    member = add_member(
        session,
        name="Wang Fang",
        identities={
            "phone": persona.phone,
            "member_no": persona.member_no,
            "unionid": persona.unionid,
        },
    )
    add_order(
        session,
        member_id=member.id,
        order_id="SO-1001",
        lines=[("48.00", "tea", "oolong-250g"), ("30.00", "teaware", "cup-white")],
        paid_at=datetime(2026, 3, 8, 4, 30, tzinfo=UTC),
    )
    add_order(
        session,
        member_id=member.id,
        order_id="SO-1002",
        lines=[("45.50", "tea", "jasmine-100g")],
        paid_at=datetime(2026, 5, 20, 7, 0, tzinfo=UTC),
    )
    return WangFang(member_id=member.id)


def merge_into(session: Session, *, merged: Member, survivor_id: int, via: tuple[str, str]) -> None:
    """What OneID does on a merge: point at the survivor, move identities and orders."""
    merged.merged_into_id = survivor_id
    session.query(Identity).filter(Identity.member_id == merged.id).update(
        {Identity.member_id: survivor_id}
    )
    session.query(OrderLine).filter(OrderLine.member_id == merged.id).update(
        {OrderLine.member_id: survivor_id}
    )
    session.add(
        MemberMerge(
            survivor_id=survivor_id,
            merged_id=merged.id,
            via_type=via[0],
            via_value=via[1],
            merged_at=T0,
        )
    )
    session.flush()


def seed_demo_tea(session_factory: sessionmaker[Session]) -> WangFang:
    """Store SH001, guide Xiao Li and Wang Fang, committed."""
    with transaction(session_factory) as session:
        store = store_sh001(session)
        guide_xiao_li(session, store=store)
        return wang_fang(session)


def hq_user(
    session_factory: sessionmaker[Session], clock: Clock, *, username: str = "zhang.hq"
) -> UserRead:
    return access_service.create_user(
        session_factory=session_factory,
        clock=clock,
        username=username,
        password=PASSWORD,
        role=Role.HQ,
        display_name="Zhang Wei",
    )
