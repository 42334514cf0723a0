"""Demo Tea personas for the points, tier and stamp-card tests."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.ingest.models import Event
from siyu.loyalty.models_points import PointsEntry, PointsLot
from tests.factories import operational

T0 = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def wang_fang(session_factory: sessionmaker[Session]) -> int:
    with transaction(session_factory) as session:
        return operational.member(session, name="Wang Fang").id


def paid_order(
    session_factory: sessionmaker[Session],
    *,
    member_id: int,
    order_id: str,
    amount: str,
    paid_at: datetime = T0,
    line_no: int = 1,
    status: str = "paid",
    category: str = "tea",
) -> None:
    with transaction(session_factory) as session:
        operational.order_line(
            session,
            member_id=member_id,
            order_id=order_id,
            amount=amount,
            paid_at=paid_at,
            line_no=line_no,
            status=status,
            category=category,
        )


def entries(session_factory: sessionmaker[Session], member_id: int) -> list[tuple[str, int, int]]:
    with session_factory() as session:
        rows = session.execute(
            sa.select(PointsEntry.kind, PointsEntry.points, PointsEntry.pending)
            .where(PointsEntry.member_id == member_id)
            .order_by(PointsEntry.id)
        ).all()
    return [(k, p, q) for k, p, q in rows]


def lots(session_factory: sessionmaker[Session], member_id: int) -> list[tuple[str, int, int]]:
    with session_factory() as session:
        rows = session.execute(
            sa.select(PointsLot.state, PointsLot.points, PointsLot.remaining)
            .where(PointsLot.member_id == member_id)
            .order_by(PointsLot.id)
        ).all()
    return [(s, p, r) for s, p, r in rows]


def events(
    session_factory: sessionmaker[Session], type: str
) -> list[tuple[str, dict[str, object]]]:
    with session_factory() as session:
        rows = session.execute(
            sa.select(Event.event_id, Event.properties).where(Event.type == type).order_by(Event.id)
        ).all()
    return [(e, dict(p)) for e, p in rows]
