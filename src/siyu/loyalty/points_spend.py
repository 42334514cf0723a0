"""Spending points: the hot path of the ledger (a POS paying with points, points for a
coupon, points + cash). The caller holds the member's account lock (ledger.lock_account).

Round trips (decided for throughput, ADR 0001): one read for the replay check, the balance and
the pending points; one read for the lots (to spend, and past expiry to expire first); then the
writes. On PostgreSQL the writes are one statement — the spend entry, its allocations, the lots'
new remaining and the points_spent event as data-modifying CTEs; on SQLite they go through the
ORM. Either way the lots to draw and the amounts are decided in Python on rows read under the
lock, soonest expiry first, and a short balance refuses the whole spend before anything is
written.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from siyu.ingest.models import Event
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.ledger import LedgerResult, append_entry, draw_lots, expire_lot, replayed
from siyu.loyalty.models_points import EntryKind, LotKind, LotState, PointsEntry, PointsLot


def spend(
    db_session: Session,
    *,
    member_id: int,
    points: int,
    key: str,
    reason: str,
    now: datetime,
    reference: str | None = None,
) -> LedgerResult:
    """Spend points from the soonest-expiring lots; refused whole if the balance is short.
    Hot path: one read for the replay check and the balance, one for the lots."""
    if points <= 0:
        raise LoyaltyError(LoyaltyErrorCode.INVALID_POINTS, f"points must be > 0, got {points}")
    replayed_id, available, pending = _key_and_balance(db_session, key=key, member_id=member_id)
    if replayed_id is not None:
        existing = db_session.get(PointsEntry, replayed_id)
        assert existing is not None  # just read
        return replayed(db_session, existing, member_id)
    lots = _active_earn_lots(db_session, member_id, now)
    due = [lot for lot in lots if lot.expires_at is not None and lot.expires_at <= now]
    if due:
        for lot in due:
            available -= lot.remaining
            expire_lot(db_session, lot, now=now, key=f"expire:{lot.id}")
        lots = [lot for lot in lots if lot not in due]
    if available < points:
        raise LoyaltyError(
            LoyaltyErrorCode.INSUFFICIENT_POINTS,
            f"member {member_id} has {available} points, {points} needed",
        )
    after = available - points
    spendable = [lot for lot in lots if lot.remaining > 0]
    # The key was new (checked under the lock), so its event id is new too: no existence read.
    event = {"points": points, "reason": reason, "reference": reference, "balance": after}
    if db_session.get_bind().dialect.name == "postgresql":
        entry_id = _write_in_one_statement(
            db_session, member_id=member_id, points=points, key=key, reason=reason,
            reference=reference, now=now, lots=spendable, event=event,
        )  # fmt: skip
        return LedgerResult(entry_id, EntryKind.SPEND, -points, after, pending, created=True)
    entry = append_entry(
        db_session,
        member_id=member_id,
        kind=EntryKind.SPEND,
        points=-points,
        pending=0,
        idempotency_key=key,
        reason=reason,
        reference=reference,
        created_at=now,
    )
    draw_lots(db_session, entry, spendable, points)
    db_session.add(
        Event(
            event_id=f"points_spent:{key}",
            type="points_spent",
            occurred_at=now,
            member_id=member_id,
            identities={},
            properties=event,
            received_at=now,
        )
    )
    return LedgerResult(entry.id, EntryKind.SPEND, -points, after, pending, created=True)


def _key_and_balance(
    db_session: Session, *, key: str, member_id: int
) -> tuple[int | None, int, int]:
    """The entry already applied under `key` (if any), the member's balance and pending
    points, in one read."""
    of_member = PointsEntry.member_id == member_id
    row = db_session.execute(
        sa.select(
            sa.select(PointsEntry.id).where(PointsEntry.idempotency_key == key).scalar_subquery(),
            sa.select(sa.func.coalesce(sa.func.sum(PointsEntry.points), 0))
            .where(of_member)
            .scalar_subquery(),
            sa.select(sa.func.coalesce(sa.func.sum(PointsEntry.pending), 0))
            .where(of_member)
            .scalar_subquery(),
        )
    ).one()
    return (None if row[0] is None else int(row[0])), int(row[1]), int(row[2])


def _active_earn_lots(db_session: Session, member_id: int, now: datetime) -> list[PointsLot]:
    """Spendable lots in spending order, plus active lots already past expiry (to expire)."""
    return list(
        db_session.execute(
            sa.select(PointsLot)
            .where(
                PointsLot.member_id == member_id,
                PointsLot.state == LotState.ACTIVE,
                PointsLot.kind == LotKind.EARN,
                (PointsLot.remaining > 0) | (PointsLot.expires_at <= now),
            )
            .order_by(PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)
        ).scalars()
    )


_ENTRIES = cast(sa.Table, PointsEntry.__table__)
_EVENTS = cast(sa.Table, Event.__table__)
_WRITE = sa.text(
    "WITH entry AS (INSERT INTO points_entries (member_id, kind, points, pending,"
    " idempotency_key, reason, reference, created_at)"
    " VALUES (:member_id, 'spend', :neg_points, 0, :key, :reason, :reference, :now)"
    " RETURNING id),"
    " drawn AS (SELECT lot, part FROM unnest(CAST(:lots AS BIGINT[]), CAST(:parts AS INT[]))"
    " AS x(lot, part)),"
    " allocated AS (INSERT INTO points_allocations (entry_id, lot_id, points)"
    " SELECT entry.id, drawn.lot, drawn.part FROM entry, drawn),"
    " lowered AS (UPDATE points_lots SET remaining = points_lots.remaining - drawn.part"
    " FROM drawn WHERE points_lots.id = drawn.lot),"
    " announced AS (INSERT INTO events (event_id, type, occurred_at, member_id, identities,"
    " properties, received_at) VALUES (:event_id, 'points_spent', :now, :member_id,"
    " CAST('{}' AS JSON), CAST(:properties AS JSON), :now))"
    " SELECT id FROM entry"
).bindparams(
    sa.bindparam("now", type_=_ENTRIES.c.created_at.type),
    sa.bindparam("properties", type_=_EVENTS.c.properties.type),
    sa.bindparam("lots", type_=postgresql.ARRAY(sa.BigInteger)),
    sa.bindparam("parts", type_=postgresql.ARRAY(sa.Integer)),
)


def _write_in_one_statement(
    db_session: Session,
    *,
    member_id: int,
    points: int,
    key: str,
    reason: str,
    reference: str | None,
    now: datetime,
    lots: list[PointsLot],
    event: dict[str, object],
) -> int:
    """The spend entry, its allocations, the lots' remaining and the event in one round trip."""
    parts: list[tuple[int, int]] = []
    wanted = points
    for lot in lots:
        part = min(lot.remaining, wanted)
        if part > 0:
            parts.append((lot.id, part))
            wanted -= part
        if wanted == 0:
            break
    entry_id = db_session.execute(
        _WRITE,
        {
            "member_id": member_id,
            "neg_points": -points,
            "key": key,
            "reason": reason,
            "reference": reference,
            "now": now,
            "event_id": f"points_spent:{key}",
            "properties": event,
            "lots": [lot_id for lot_id, _ in parts],
            "parts": [part for _, part in parts],
        },
    ).scalar_one()
    for lot in lots:  # the rows changed on the server: never trust the loaded values again
        db_session.expire(lot)
    return int(entry_id)
