"""Background work of the points ledger, run by `siyu worker` (hook `run_points_jobs`):
earn points for paid orders and take them back for refunded ones, make pending lots spendable,
expire lots, remind members of points about to expire, and end or warn tier periods.

Set-based (loyalty/order_points.py): one transaction per batch of about 1,000 orders or
members, each locking the batch's account rows first in member-id order, so the jobs can run
beside API calls and in several workers at once without deadlocks; rare cases (refunds, full
stamp cards, debts, tier changes) run the per-member code under the same locks.
Everything is keyed: running a job twice, or over overlapping windows, changes nothing
the second time.

Orders (decided where the issue is silent): each paid line earns its own lot (key
`order:{order_id}:{line_no}`), pending until paid_at + pending_days, expiring expiry_days after
paid_at; an order with any refunded line is a refunded order (DESIGN §4.2), so every earning of
the order is reversed (key `…:refund`) and its stamps voided. The earning job reads order lines
by `imported_at` from a cursor with one hour of overlap (replays are no-ops).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.db import transaction
from siyu.loyalty import earn_rules, ledger, order_points, stamps, tiers
from siyu.loyalty.models_points import (
    EntryKind,
    LotKind,
    LotState,
    PointsAccount,
    PointsCursor,
    PointsEntry,
    PointsLot,
)
from siyu.loyalty.points_service import (
    SHANGHAI,
    Factory,
    _give_stamp_reward,
    _member_ids_with_lots,
    _take_stamp_reward,
    evaluate_tier_with,
    load_earn_rules,
    load_tier_rules,
)
from siyu.orders.models import OrderLine

CURSOR = "earn_for_orders"
OVERLAP = timedelta(hours=1)
BATCH_ORDERS = 1_000
BATCH_MEMBERS = 1_000


def earn_for_orders(
    session_factory: Factory, *, since: datetime, now: datetime, batch_orders: int = BATCH_ORDERS
) -> int:
    """Award points for orders imported since `since` and reverse refunded ones; returns orders.
    One transaction per batch of about `batch_orders` orders (a member's orders stay together)."""
    with session_factory() as db_session:
        pairs = sorted(
            (int(member_id), str(order_id))
            for member_id, order_id in db_session.execute(
                sa.select(OrderLine.member_id, OrderLine.order_id)
                .where(OrderLine.imported_at >= since, OrderLine.imported_at <= now)
                .distinct()
            ).all()
        )
    for batch in _member_batches(pairs, batch_orders):
        with transaction(session_factory) as db_session:
            _settle_batch(db_session, batch, now=now)
    return len(pairs)


def _member_batches(pairs: list[tuple[int, str]], size: int) -> list[list[tuple[int, str]]]:
    batches: list[list[tuple[int, str]]] = [[]]
    for pair in pairs:
        current = batches[-1]
        if len(current) >= size and current[-1][0] != pair[0]:
            batches.append(current := [])
        current.append(pair)
    return [batch for batch in batches if batch]


def _settle_batch(db_session: Session, batch: list[tuple[int, str]], *, now: datetime) -> None:
    accounts = order_points.lock_accounts(
        db_session, member_ids=[member_id for member_id, _ in batch], now=now
    )
    orders = order_points.read_lines(db_session, batch)
    rules = load_earn_rules(db_session)
    tier_rules = load_tier_rules(db_session)
    refunded = sorted(
        p for p, lines in orders.items() if any(x.status == "refunded" for x in lines)
    )
    paid = {pair: lines for pair, lines in orders.items() if pair not in set(refunded)}
    planned = order_points.plan_earnings(
        [line for lines in paid.values() for line in lines if line.status == "paid"],
        accounts=accounts,
        rules=rules,
        tier_rules=tier_rules,
        now=now,
        tz=SHANGHAI,
    )
    spendable = order_points.write_earnings(db_session, planned, now=now)
    for member_id in sorted(order_points.members_with_debt(db_session, sorted(spendable))):
        ledger.repay_debt(db_session, member_id=member_id)
    cards = stamps.active_cards(db_session)
    touched = order_points.stamp_orders(db_session, cards=cards, orders=paid, now=now)
    for member_id, order_id in refunded:
        line_nos = [line.line_no for line in orders[(member_id, order_id)]]
        _refund_order(
            db_session,
            member_id=member_id,
            order_id=order_id,
            line_nos=line_nos,
            now=now,
            rules=rules,
        )
    for card, member_id in order_points.full_cards(db_session, cards=cards, touched=touched):
        stamps.complete_if_full(
            db_session, card=card, member_id=member_id, now=now, give=_give_stamp_reward
        )
    if tier_rules is not None:
        _evaluate_tiers(db_session, list(accounts.values()), rules=tier_rules, now=now)


def _evaluate_tiers(
    db_session: Session, accounts: list[PointsAccount], *, rules: tiers.TierRules, now: datetime
) -> int:
    """Evaluate locked accounts with the measure read for all of them at once; returns changes."""
    values = order_points.measure_values(db_session, rules=rules, accounts=accounts, now=now)
    changed = 0
    events: list[dict[str, Any]] = []
    # Account changes are flushed once at the end and the events inserted in bulk.
    with db_session.no_autoflush:
        for account in sorted(accounts, key=lambda a: a.member_id):
            change = evaluate_tier_with(
                db_session,
                account,
                now,
                rules=rules,
                value=values[account.member_id],
                events=events,
            )
            changed += change is not None
    db_session.flush()
    order_points.insert_events(db_session, events)
    return changed


def _refund_order(
    db_session: Session,
    *,
    member_id: int,
    order_id: str,
    line_nos: list[int],
    now: datetime,
    rules: earn_rules.EarnRules,
) -> None:
    for line_no in line_nos:
        earn_key = f"order:{order_id}:{line_no}"
        earned = ledger.entry_by_key(db_session, earn_key)
        if earned is None or earned.kind != EntryKind.EARN:
            continue
        ledger.reverse_earn(
            db_session,
            member_id=member_id,
            earn_key=earn_key,
            key=f"{earn_key}:refund",
            policy=rules.reversal_policy,
            now=now,
        )
    stamps.void_order(
        db_session,
        member_id=member_id,
        order_id=order_id,
        now=now,
        give=_give_stamp_reward,
        take=_take_stamp_reward,
    )


def activate_and_expire(session_factory: Factory, *, now: datetime) -> int:
    """Pending lots past their refund window become spendable; lots past expiry expire.
    Set-based per batch of members (their accounts locked in member-id order)."""
    with session_factory() as db_session:
        members = set(_member_ids_with_lots(db_session, LotState.PENDING, now))
        members |= set(_member_ids_with_lots(db_session, LotState.ACTIVE, now))
    for part in order_points.chunks(sorted(members), BATCH_MEMBERS):
        with transaction(session_factory) as db_session:
            order_points.lock_accounts(db_session, member_ids=list(part), now=now)
            activated = _activate_lots(db_session, part, now=now)
            # Debts are repaid before expiry, as ledger.activate_due then expire_due would.
            for member_id in sorted(order_points.members_with_debt(db_session, activated)):
                ledger.repay_debt(db_session, member_id=member_id)
            _expire_lots(db_session, part, now=now)
    return len(members)


def _activate_lots(db_session: Session, members: Sequence[int], *, now: datetime) -> list[int]:
    """Bulk `ledger.activate_due`; returns the members who got spendable points."""
    lots = db_session.execute(
        sa.select(PointsLot.id, PointsLot.member_id, PointsLot.points)
        .where(
            PointsLot.member_id.in_(members),
            PointsLot.state == LotState.PENDING,
            PointsLot.available_at <= now,
        )
        .order_by(PointsLot.id)
    ).all()
    if not lots:
        return []
    rows = [
        _lot_entry(lot_id, member_id, EntryKind.ACTIVATE, points, -points, now)
        | {"idempotency_key": f"activate:{lot_id}", "reason": "refund window passed"}
        for lot_id, member_id, points in lots
    ]
    order_points.bulk_insert(db_session, PointsEntry, rows)
    for part in order_points.chunks([lot_id for lot_id, _, _ in lots]):
        db_session.execute(
            sa.update(PointsLot)
            .where(PointsLot.id.in_(part))
            .values(state=LotState.ACTIVE)
            .execution_options(synchronize_session=False)
        )
    return sorted({member_id for _, member_id, _ in lots})


def _expire_lots(db_session: Session, members: Sequence[int], *, now: datetime) -> None:
    """Bulk `ledger.expire_due`: an expire entry for what is left, the lot emptied."""
    lots = db_session.execute(
        sa.select(PointsLot.id, PointsLot.member_id, PointsLot.remaining)
        .where(
            PointsLot.member_id.in_(members),
            PointsLot.state == LotState.ACTIVE,
            PointsLot.kind == LotKind.EARN,
            PointsLot.expires_at <= now,
        )
        .order_by(PointsLot.id)
    ).all()
    rows = [
        _lot_entry(lot_id, member_id, EntryKind.EXPIRE, -remaining, 0, now)
        | {"idempotency_key": f"expire:{lot_id}", "reason": "expired"}
        for lot_id, member_id, remaining in lots
        if remaining > 0
    ]
    if rows:
        order_points.bulk_insert(db_session, PointsEntry, rows)
    for part in order_points.chunks([lot_id for lot_id, _, _ in lots]):
        db_session.execute(
            sa.update(PointsLot)
            .where(PointsLot.id.in_(part))
            .values(state=LotState.EXPIRED, remaining=0)
            .execution_options(synchronize_session=False)
        )


def _lot_entry(
    lot_id: int, member_id: int, kind: EntryKind, points: int, pending: int, now: datetime
) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "kind": kind,
        "points": points,
        "pending": pending,
        "reference": None,
        "lot_id": lot_id,
        "related_entry_id": None,
        "created_at": now,
    }


def remind_expiring(session_factory: Factory, *, now: datetime) -> int:
    """One points_expiring event per member with unreminded lots expiring within the window."""
    with session_factory() as db_session:
        horizon = now + timedelta(days=load_earn_rules(db_session).expiry_reminder_days)
        due = db_session.execute(
            sa.select(PointsLot)
            .where(
                PointsLot.state == LotState.ACTIVE,
                PointsLot.kind == LotKind.EARN,
                PointsLot.remaining > 0,
                PointsLot.reminded_at.is_(None),
                PointsLot.expires_at <= horizon,
            )
            .order_by(PointsLot.member_id, PointsLot.expires_at)
        ).scalars()
        by_member: dict[int, list[int]] = defaultdict(list)
        for lot in due:
            by_member[lot.member_id].append(lot.id)
    for part in order_points.chunks(sorted(by_member), BATCH_MEMBERS):
        with transaction(session_factory) as db_session:
            order_points.lock_accounts(db_session, member_ids=list(part), now=now)
            for member_id in part:
                _remind(db_session, member_id=member_id, lot_ids=by_member[member_id], now=now)
    return len(by_member)


def _remind(db_session: Session, *, member_id: int, lot_ids: list[int], now: datetime) -> None:
    lots = [
        lot
        for lot in db_session.execute(
            sa.select(PointsLot).where(PointsLot.id.in_(lot_ids)).order_by(PointsLot.expires_at)
        ).scalars()
        if lot.reminded_at is None and lot.remaining > 0 and lot.state == LotState.ACTIVE
    ]
    if not lots:
        return
    for lot in lots:
        lot.reminded_at = now
    first = lots[0]
    assert first.expires_at is not None  # selected by expires_at
    ledger.add_event(
        db_session,
        type="points_expiring",
        event_id=f"points_expiring:{member_id}:{first.id}",
        member_id=member_id,
        now=now,
        points=sum(lot.remaining for lot in lots),
        expires_at=first.expires_at.isoformat(),
    )


def run_tier_jobs(session_factory: Factory, *, now: datetime) -> int:
    """End tier periods that are over and warn members who are about to drop."""
    with session_factory() as db_session:
        rules = load_tier_rules(db_session)
        if rules is None:
            return 0
        due = tiers.due_member_ids(db_session, rules=rules, now=now)
    return _evaluate_in_batches(session_factory, due, rules=rules, now=now)


def recompute_tiers(session_factory: Factory, *, now: datetime) -> int:
    """Evaluate every member who has bought or earned (upgrades, period ends, warnings)."""
    with session_factory() as db_session:
        rules = load_tier_rules(db_session)
        if rules is None:
            return 0
        members = sorted(
            set(db_session.execute(sa.select(OrderLine.member_id).distinct()).scalars())
            | set(db_session.execute(sa.select(PointsLot.member_id).distinct()).scalars())
        )
    return _evaluate_in_batches(session_factory, members, rules=rules, now=now)


def _evaluate_in_batches(
    session_factory: Factory, members: list[int], *, rules: tiers.TierRules, now: datetime
) -> int:
    changed = 0
    for part in order_points.chunks(members, BATCH_MEMBERS):
        with transaction(session_factory) as db_session:
            accounts = order_points.lock_accounts(db_session, member_ids=list(part), now=now)
            changed += _evaluate_tiers(db_session, list(accounts.values()), rules=rules, now=now)
    return changed


def run_points_jobs(*, session_factory: Factory, now: datetime) -> int:
    """The worker hook: orders → points, activation, expiry, reminders, tier periods."""
    with transaction(session_factory) as db_session:
        cursor = db_session.get(PointsCursor, CURSOR)
        since = cursor.position - OVERLAP if cursor else datetime(1970, 1, 1, tzinfo=UTC)
    done = earn_for_orders(session_factory, since=since, now=now)
    with transaction(session_factory) as db_session:
        cursor = db_session.get(PointsCursor, CURSOR)
        if cursor is None:
            db_session.add(PointsCursor(name=CURSOR, position=now))
        elif cursor.position < now:
            cursor.position = now
    done += activate_and_expire(session_factory, now=now)
    done += remind_expiring(session_factory, now=now)
    done += run_tier_jobs(session_factory, now=now)
    return done
