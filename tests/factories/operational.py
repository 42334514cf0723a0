"""Operational-store rows for sync, profile and tag tests (brand "Demo Tea", store SH001)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

from sqlalchemy.orm import Session

from siyu.identity.models import Member, MemberMerge
from siyu.ingest.models import Event
from siyu.orders.models import OrderLine
from siyu.staff.models import Store

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
_ids = count(1)


def member(session: Session, *, name: str = "Wang Fang", at: datetime = T0) -> Member:
    row = Member(
        name=name,
        gender="F",
        registered_at=at,
        store_code="SH001",
        channel="pos",
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    return row


def order_line(
    session: Session,
    *,
    member_id: int,
    order_id: str,
    paid_at: datetime = T0,
    amount: str = "39.00",
    line_no: int = 1,
    status: str = "paid",
    category: str = "tea",
    store_code: str = "SH001",
) -> OrderLine:
    row = OrderLine(
        order_id=order_id,
        line_no=line_no,
        member_id=member_id,
        store_code=store_code,
        channel="pos",
        paid_at=paid_at,
        amount=Decimal(amount),
        status=status,
        category=category,
        sku=f"SKU-{category}",
        row_hash=f"h{next(_ids)}",
        imported_at=paid_at,
    )
    session.add(row)
    session.flush()
    return row


def event(session: Session, *, member_id: int | None, event_id: str, type: str = "share") -> Event:
    row = Event(
        event_id=event_id,
        type=type,
        occurred_at=T0,
        member_id=member_id,
        identities={},
        properties={"page": "首页"},
        received_at=T0,
    )
    session.add(row)
    session.flush()
    return row


def merge(session: Session, *, merged: Member, survivor: Member, at: datetime = T0) -> None:
    """What OneID does: point the merged member at the survivor and move its rows."""
    merged.merged_into_id = survivor.id
    merged.updated_at = at
    survivor.updated_at = at
    session.query(OrderLine).filter(OrderLine.member_id == merged.id).update(
        {OrderLine.member_id: survivor.id}
    )
    session.add(
        MemberMerge(
            survivor_id=survivor.id,
            merged_id=merged.id,
            via_type="phone",
            via_value="13800138000",
            merged_at=at,
        )
    )
    session.flush()


def store(session: Session, *, code: str = "SH001", city: str = "Shanghai") -> Store:
    row = Store(code=code, name=f"Demo Tea {code}", city=city, region="East", created_at=T0)
    session.add(row)
    session.flush()
    return row
