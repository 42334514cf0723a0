"""Background work of the points ledger, run by `siyu worker` (hook `run_points_jobs`):
earn points for paid orders and take them back for refunded ones, make pending lots spendable,
expire lots, remind members of points about to expire, and end or warn tier periods.

One transaction per member, each taking the member's account lock first, so the jobs can run
beside API calls and in several workers at once. Everything is keyed: running a job twice, or
over overlapping windows, changes nothing the second time.

Orders (decided where the issue is silent): each paid line earns its own lot (key
`order:{order_id}:{line_no}`), pending until paid_at + pending_days, expiring expiry_days after
paid_at; an order with any refunded line is a refunded order (DESIGN §4.2), so every earning of
the order is reversed (key `…:refund`) and its stamps voided. The earning job reads order lines
by `imported_at` from a cursor with one hour of overlap (replays are no-ops).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.db import transaction
from siyu.loyalty import earn_rules, ledger, stamps, tiers
from siyu.loyalty.models_points import EntryKind, LotKind, LotState, PointsCursor, PointsLot
from siyu.loyalty.points_service import (
    SHANGHAI,
    Factory,
    _evaluate_tier,
    _give_stamp_reward,
    _member_ids_with_lots,
    _take_stamp_reward,
    load_earn_rules,
    load_tier_rules,
)
from siyu.orders.models import OrderLine

CURSOR = "earn_for_orders"
OVERLAP = timedelta(hours=1)


def earn_for_orders(session_factory: Factory, *, since: datetime, now: datetime) -> int:
    """Award points for orders imported since `since` and reverse refunded ones; returns orders."""
    with session_factory() as db_session:
        pairs = db_session.execute(
            sa.select(OrderLine.member_id, OrderLine.order_id)
            .where(OrderLine.imported_at >= since, OrderLine.imported_at <= now)
            .distinct()
        ).all()
    by_member: dict[int, set[str]] = defaultdict(set)
    for member_id, order_id in pairs:
        by_member[member_id].add(order_id)
    for member_id in sorted(by_member):
        with transaction(session_factory) as db_session:
            account = ledger.lock_account(db_session, member_id=member_id, now=now)
            for order_id in sorted(by_member[member_id]):
                _settle_order(db_session, member_id=member_id, order_id=order_id, now=now)
            _evaluate_tier(db_session, account, now)
    return len(pairs)


def _settle_order(db_session: Session, *, member_id: int, order_id: str, now: datetime) -> None:
    lines = list(
        db_session.execute(
            sa.select(OrderLine)
            .where(OrderLine.order_id == order_id, OrderLine.member_id == member_id)
            .order_by(OrderLine.line_no)
        ).scalars()
    )
    rules = load_earn_rules(db_session)
    if any(line.status == "refunded" for line in lines):
        _refund_order(
            db_session, member_id=member_id, order_id=order_id, lines=lines, now=now, rules=rules
        )
        return
    paid = [line for line in lines if line.status == "paid"]
    _earn_lines(db_session, member_id=member_id, lines=paid, now=now, rules=rules)
    total_fen = int(sum((line.amount for line in paid), Decimal(0)) * 100)
    categories = {line.category for line in paid if line.category}
    for card in stamps.active_cards(db_session):
        if stamps.qualifies(card, amount_fen=total_fen, categories=categories):
            stamps.stamp_order(
                db_session,
                card=card,
                member_id=member_id,
                order_id=order_id,
                now=now,
                give=_give_stamp_reward,
            )


def _earn_lines(
    db_session: Session,
    *,
    member_id: int,
    lines: list[OrderLine],
    now: datetime,
    rules: earn_rules.EarnRules,
) -> None:
    tier_rules = load_tier_rules(db_session)
    account = ledger.lock_account(db_session, member_id=member_id, now=now)
    for line in lines:
        multiplier = tiers.multiplier_on(tier_rules, account.tier_code, line.paid_at, SHANGHAI)
        points = earn_rules.points_for_amount(rules, amount=line.amount, multiplier=multiplier)
        if points <= 0:
            continue
        ledger.earn(
            db_session,
            member_id=member_id,
            points=points,
            key=f"order:{line.order_id}:{line.line_no}",
            reason="order_paid",
            reference=line.order_id,
            now=now,
            available_at=line.paid_at + timedelta(days=rules.pending_days),
            expires_at=line.paid_at + timedelta(days=rules.expiry_days),
        )


def _refund_order(
    db_session: Session,
    *,
    member_id: int,
    order_id: str,
    lines: list[OrderLine],
    now: datetime,
    rules: earn_rules.EarnRules,
) -> None:
    for line in lines:
        earn_key = f"order:{order_id}:{line.line_no}"
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
    """Pending lots past their refund window become spendable; lots past expiry expire."""
    with session_factory() as db_session:
        members = set(_member_ids_with_lots(db_session, LotState.PENDING, now))
        members |= set(_member_ids_with_lots(db_session, LotState.ACTIVE, now))
    for member_id in sorted(members):
        with transaction(session_factory) as db_session:
            ledger.lock_account(db_session, member_id=member_id, now=now)
            ledger.activate_due(db_session, member_id=member_id, now=now)
            ledger.expire_due(db_session, member_id=member_id, now=now)
    return len(members)


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
    for member_id, lot_ids in sorted(by_member.items()):
        with transaction(session_factory) as db_session:
            ledger.lock_account(db_session, member_id=member_id, now=now)
            _remind(db_session, member_id=member_id, lot_ids=lot_ids, now=now)
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
    changed = 0
    for member_id in due:
        with transaction(session_factory) as db_session:
            account = ledger.lock_account(db_session, member_id=member_id, now=now)
            changed += _evaluate_tier(db_session, account, now) is not None
    return changed


def recompute_tiers(session_factory: Factory, *, now: datetime) -> int:
    """Evaluate every member who has bought or earned (upgrades, period ends, warnings)."""
    with session_factory() as db_session:
        if load_tier_rules(db_session) is None:
            return 0
        members = sorted(
            set(db_session.execute(sa.select(OrderLine.member_id).distinct()).scalars())
            | set(db_session.execute(sa.select(PointsLot.member_id).distinct()).scalars())
        )
    changed = 0
    for member_id in members:
        with transaction(session_factory) as db_session:
            account = ledger.lock_account(db_session, member_id=member_id, now=now)
            changed += _evaluate_tier(db_session, account, now) is not None
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
