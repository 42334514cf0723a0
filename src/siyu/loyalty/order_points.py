"""Set-based earning for paid orders: one transaction per batch of orders (about 1,000), a
few queries to read the batch's lines, accounts, keys and stamps, and bulk inserts (Core
executemany) for lots, entries, stamps and events.

Same results as earning order by order through `ledger.earn` (the per-order path, which the
rare cases still use): every paid line earns its own lot keyed `order:{order_id}:{line_no}`,
pending until paid_at + pending_days; the points_earned event carries the member's balance
after the entry. Idempotent: keys already in the ledger and stamps already on a card are read
first and skipped (UNIQUE keys are the backstop). Race-safe: the batch's account rows are
locked before anything is read, in member-id order (SELECT … FOR UPDATE ORDER BY on
PostgreSQL; on SQLite the first write takes the database write lock).

The rare cases go through the per-order code under the same locks: refunded orders (reversal
policy, stamps voided), members with debt lots (repaid after the batch's inserts), cards that
became full (reward points or coupons), and tier changes (evaluated once per member per batch,
with the qualifying measure read for the whole batch in one query).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.ingest.models import Event
from siyu.loyalty import earn_rules, stamps, tiers
from siyu.loyalty.models_points import (
    EntryKind,
    LotKind,
    LotState,
    PointsAccount,
    PointsEntry,
    PointsLot,
    Stamp,
    StampCard,
)
from siyu.orders.models import OrderLine

CHUNK = 2_000  # keys per IN list: well under SQLite's parameter limit


@dataclass(frozen=True)
class Line:
    order_id: str
    line_no: int
    member_id: int
    status: str
    amount: Decimal
    paid_at: datetime
    category: str | None


def chunks(values: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def read_lines(
    db_session: Session, pairs: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], list[Line]]:
    """The lines of each (member, order) of the batch, in line order."""
    wanted = set(pairs)
    order_ids = sorted({order_id for _, order_id in pairs})
    found: dict[tuple[int, str], list[Line]] = defaultdict(list)
    columns = (
        OrderLine.order_id,
        OrderLine.line_no,
        OrderLine.member_id,
        OrderLine.status,
        OrderLine.amount,
        OrderLine.paid_at,
        OrderLine.category,
    )
    for part in chunks(order_ids):
        rows = db_session.execute(
            sa.select(*columns).where(OrderLine.order_id.in_(part)).order_by(OrderLine.line_no)
        ).all()
        for row in rows:
            if (row.member_id, row.order_id) in wanted:
                found[(row.member_id, row.order_id)].append(Line(*row))
    return found


def lock_accounts(
    db_session: Session, *, member_ids: list[int], now: datetime
) -> dict[int, PointsAccount]:
    """Create missing account rows and lock all of them in member-id order; returns them."""
    ordered = sorted(set(member_ids))
    dialect = db_session.get_bind().dialect.name
    rows = [{"member_id": m, "version": 0, "created_at": now, "updated_at": now} for m in ordered]
    for part in chunks(rows):
        db_session.execute(_insert_ignore(dialect, PointsAccount), list(part))
    accounts: dict[int, PointsAccount] = {}
    for part in chunks(ordered):
        query = sa.select(PointsAccount).where(PointsAccount.member_id.in_(part))
        query = query.order_by(PointsAccount.member_id).execution_options(populate_existing=True)
        if dialect == "postgresql":
            query = query.with_for_update()
        for account in db_session.execute(query).scalars():
            accounts[account.member_id] = account
        db_session.execute(
            sa.update(PointsAccount)
            .where(PointsAccount.member_id.in_(part))
            .values(version=PointsAccount.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return accounts


def bulk_insert(db_session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany on the session's connection: no ORM bookkeeping per row."""
    if rows:
        db_session.connection().execute(sa.insert(cast(sa.Table, model.__table__)), rows)


def _insert_ignore(dialect: str, model: Any) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


def _existing(db_session: Session, column: Any, values: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(sorted(set(values))):
        found.update(db_session.execute(sa.select(column).where(column.in_(part))).scalars())
    return found


def balances(db_session: Session, member_ids: Sequence[int]) -> dict[int, int]:
    totals: dict[int, int] = defaultdict(int)
    for part in chunks(sorted(set(member_ids))):
        rows = db_session.execute(
            sa.select(PointsEntry.member_id, sa.func.coalesce(sa.func.sum(PointsEntry.points), 0))
            .where(PointsEntry.member_id.in_(part))
            .group_by(PointsEntry.member_id)
        ).all()
        totals.update({member_id: int(total) for member_id, total in rows})
    return totals


def members_with_debt(db_session: Session, member_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for part in chunks(sorted(set(member_ids))):
        found.update(
            db_session.execute(
                sa.select(PointsLot.member_id)
                .where(
                    PointsLot.member_id.in_(part),
                    PointsLot.kind == LotKind.DEBT,
                    PointsLot.remaining < 0,
                )
                .distinct()
            ).scalars()
        )
    return found


@dataclass
class _Earning:
    line: Line
    points: int
    key: str
    pending: bool
    available_at: datetime
    expires_at: datetime


def plan_earnings(
    lines: list[Line],
    *,
    accounts: dict[int, PointsAccount],
    rules: earn_rules.EarnRules,
    tier_rules: tiers.TierRules | None,
    now: datetime,
    tz: Any,
) -> list[_Earning]:
    """What each paid line earns (multiplier of the member's tier on the day it was paid)."""
    planned = []
    for line in lines:
        code = accounts[line.member_id].tier_code
        multiplier = tiers.multiplier_on(tier_rules, code, line.paid_at, tz)
        points = earn_rules.points_for_amount(rules, amount=line.amount, multiplier=multiplier)
        if points <= 0:
            continue
        available_at = line.paid_at + timedelta(days=rules.pending_days)
        planned.append(
            _Earning(
                line=line,
                points=points,
                key=f"order:{line.order_id}:{line.line_no}",
                pending=available_at > now,
                available_at=available_at,
                expires_at=line.paid_at + timedelta(days=rules.expiry_days),
            )
        )
    return planned


def write_earnings(db_session: Session, planned: list[_Earning], *, now: datetime) -> set[int]:
    """Insert lots, entries and points_earned events for keys not yet in the ledger; returns
    the members who got spendable points (their debts may need repaying)."""
    done = _existing(db_session, PointsEntry.idempotency_key, [p.key for p in planned])
    fresh = [p for p in planned if p.key not in done]
    if not fresh:
        return set()
    lot_rows = [
        {
            "member_id": p.line.member_id,
            "kind": LotKind.EARN,
            "state": LotState.PENDING if p.pending else LotState.ACTIVE,
            "points": p.points,
            "remaining": p.points,
            "available_at": p.available_at,
            "expires_at": p.expires_at,
            "created_at": now,
        }
        for p in fresh
    ]
    lots = cast(sa.Table, PointsLot.__table__)
    lot_ids = list(
        db_session.connection()
        .execute(sa.insert(lots).returning(lots.c.id, sort_by_parameter_order=True), lot_rows)
        .scalars()
    )
    running = balances(db_session, [p.line.member_id for p in fresh])
    entry_rows, event_rows = [], []
    for earning, lot_id in zip(fresh, lot_ids, strict=True):
        member_id = earning.line.member_id
        if not earning.pending:
            running[member_id] += earning.points
        entry_rows.append(_entry_row(earning, lot_id, now))
        event_rows.append(_event_row(earning, running[member_id], now))
    bulk_insert(db_session, PointsEntry, entry_rows)
    insert_events(db_session, event_rows)
    return {p.line.member_id for p in fresh if not p.pending}


def _entry_row(earning: _Earning, lot_id: int, now: datetime) -> dict[str, Any]:
    return {
        "member_id": earning.line.member_id,
        "kind": EntryKind.EARN,
        "points": 0 if earning.pending else earning.points,
        "pending": earning.points if earning.pending else 0,
        "idempotency_key": earning.key,
        "reason": "order_paid",
        "reference": earning.line.order_id,
        "lot_id": lot_id,
        "related_entry_id": None,
        "created_at": now,
    }


def _event_row(earning: _Earning, balance: int, now: datetime) -> dict[str, Any]:
    return {
        "event_id": f"points_earned:{earning.key}",
        "type": "points_earned",
        "occurred_at": now,
        "member_id": earning.line.member_id,
        "identities": {},
        "properties": {
            "points": earning.points,
            "pending": earning.pending,
            "reason": "order_paid",
            "reference": earning.line.order_id,
            "balance": balance,
        },
        "received_at": now,
    }


def insert_events(db_session: Session, rows: list[dict[str, Any]]) -> None:
    """Events not written before (a replayed event id adds nothing, as in ledger.add_event)."""
    seen = _existing(db_session, Event.event_id, [row["event_id"] for row in rows])
    fresh = [row for row in rows if row["event_id"] not in seen]
    if fresh:
        bulk_insert(db_session, Event, fresh)


def stamp_orders(
    db_session: Session,
    *,
    cards: list[StampCard],
    orders: dict[tuple[int, str], list[Line]],
    now: datetime,
) -> set[tuple[int, int]]:
    """Stamp every qualifying card once per paid order; returns the (card, member) pairs that
    got a new stamp (their cards may now be full)."""
    if not cards or not orders:
        return set()
    wanted: list[tuple[StampCard, int, str]] = []
    for (member_id, order_id), lines in orders.items():
        paid = [line for line in lines if line.status == "paid"]
        total_fen = int(sum((line.amount for line in paid), Decimal(0)) * 100)
        categories = {line.category for line in paid if line.category}
        for card in cards:
            if stamps.qualifies(card, amount_fen=total_fen, categories=categories):
                wanted.append((card, member_id, order_id))
    stamped: set[tuple[int, str]] = set()
    for part in chunks(sorted({order_id for _, _, order_id in wanted})):
        stamped.update(
            (card_id, order_id)
            for card_id, order_id in db_session.execute(
                sa.select(Stamp.card_id, Stamp.order_id).where(Stamp.order_id.in_(part))
            ).all()
        )
    fresh = [(c, m, o) for c, m, o in wanted if (c.id, o) not in stamped]
    if fresh:
        bulk_insert(
            db_session,
            Stamp,
            [
                {"card_id": card.id, "member_id": member, "order_id": order, "created_at": now}
                for card, member, order in fresh
            ],
        )
    return {(card.id, member) for card, member, _ in fresh}


def full_cards(
    db_session: Session, *, cards: list[StampCard], touched: set[tuple[int, int]]
) -> list[tuple[StampCard, int]]:
    """(card, member) pairs among `touched` with at least `stamps_required` open stamps."""
    by_id = {card.id: card for card in cards}
    full = []
    for card_id in sorted({card_id for card_id, _ in touched}):
        card = by_id[card_id]
        members = sorted(m for c, m in touched if c == card_id)
        for part in chunks(members):
            rows = db_session.execute(
                sa.select(Stamp.member_id, sa.func.count())
                .where(
                    Stamp.card_id == card_id,
                    Stamp.member_id.in_(part),
                    Stamp.voided_at.is_(None),
                    Stamp.completion_id.is_(None),
                )
                .group_by(Stamp.member_id)
            ).all()
            full += [(card, m) for m, n in rows if n >= card.stamps_required]
    return sorted(full, key=lambda pair: (pair[1], pair[0].id))


def measure_values(
    db_session: Session,
    *,
    rules: tiers.TierRules,
    accounts: Sequence[PointsAccount],
    now: datetime,
) -> dict[int, Decimal]:
    """The qualifying measure of many members: one grouped query for a rolling window; the
    anniversary window differs per member, so it is read member by member."""
    if rules.window != tiers.WindowKind.ROLLING:
        return {a.member_id: tiers.measure_value(db_session, rules, a, now) for a in accounts}
    start = now - timedelta(days=rules.window_days)
    values: dict[int, Decimal] = {a.member_id: Decimal(0) for a in accounts}
    for part in chunks(sorted(values)):
        values.update(_grouped_measure(db_session, rules, part, start, now))
    return values


def _grouped_measure(
    db_session: Session,
    rules: tiers.TierRules,
    members: Sequence[int],
    start: datetime,
    now: datetime,
) -> dict[int, Decimal]:
    if rules.measure == tiers.Measure.POINTS_EARNED:
        earned = (
            sa.select(PointsLot.member_id, sa.func.sum(PointsLot.points))
            .where(
                PointsLot.member_id.in_(members),
                PointsLot.kind == LotKind.EARN,
                PointsLot.state != LotState.REVERSED,
                PointsLot.created_at > start,
                PointsLot.created_at <= now,
            )
            .group_by(PointsLot.member_id)
        )
        return {m: Decimal(total or 0) for m, total in db_session.execute(earned).all()}
    refunded = sa.select(OrderLine.order_id).where(
        OrderLine.member_id.in_(members), OrderLine.status == "refunded"
    )
    spent = (
        sa.select(OrderLine.member_id, sa.func.sum(OrderLine.amount))
        .where(
            OrderLine.member_id.in_(members),
            OrderLine.status == "paid",
            OrderLine.paid_at > start,
            OrderLine.paid_at <= now,
            OrderLine.order_id.not_in(refunded),
        )
        .group_by(OrderLine.member_id)
    )
    return {m: Decimal(total or 0) for m, total in db_session.execute(spent).all()}
