"""The points ledger: lock the member's account, then append entries and move lots.

Every function here runs inside the caller's transaction and never commits. The caller must
call `lock_account` first: it is the row lock every balance read in the same transaction relies
on (re-checked after the lock, never before). Invariants kept here:
- balance = sum(points_entries.points) = sum(remaining of active lots), pending likewise;
- a spend draws only active, unexpired lots, soonest expiry first (no expiry last), and
  records an allocation per lot it used;
- an idempotency key is applied once (checked under the lock, UNIQUE as backstop).

Decisions where the issue is silent:
- Restoring a spend whose lot has expired since gives the points back and expires them again
  at once (two entries), so the ledger shows what happened and the balance stays honest.
- A reversal under `within_balance` takes what it can (the lot itself first) and writes the
  rest off as a 0-point `write_off` entry; under `only_pending` anything already spendable is
  written off; under `allow_negative` the rest becomes a debt lot that later earnings repay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.ingest.models import Event
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models_points import (
    EntryKind,
    LotKind,
    LotState,
    PointsAccount,
    PointsAllocation,
    PointsEntry,
    PointsLot,
)


class ReversalPolicy(StrEnum):
    ONLY_PENDING = "only_pending"
    WITHIN_BALANCE = "within_balance"
    ALLOW_NEGATIVE = "allow_negative"


@dataclass(frozen=True)
class Balance:
    points: int
    pending: int


@dataclass(frozen=True)
class LedgerResult:
    entry_id: int
    kind: str
    points: int
    balance: int
    pending: int
    created: bool
    written_off: int = 0


def _upsert_account(db_session: Session, member_id: int, now: datetime) -> None:
    values = {"member_id": member_id, "version": 0, "created_at": now, "updated_at": now}
    if db_session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        db_session.execute(pg_insert(PointsAccount).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        db_session.execute(sqlite_insert(PointsAccount).values(values).on_conflict_do_nothing())


def _lock_statement(member_id: int, now: datetime) -> Any:
    # An UPDATE is the one lock that works on both stores: a row lock on PostgreSQL, the
    # database write lock on SQLite. Everything read after it sees committed concurrent work.
    # RETURNING the row saves the read that would follow it.
    return (
        sa.update(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .values(version=PointsAccount.version + 1, updated_at=now)
        .returning(PointsAccount)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


def lock_existing_account(
    db_session: Session, *, member_id: int, now: datetime
) -> PointsAccount | None:
    """Lock the member's account row if it exists (one round trip); None if it does not."""
    found: PointsAccount | None = db_session.execute(
        _lock_statement(member_id, now)
    ).scalar_one_or_none()
    return found


def lock_account(db_session: Session, *, member_id: int, now: datetime) -> PointsAccount:
    """Take the member's account row lock (creating the row on first use) and return it."""
    account = lock_existing_account(db_session, member_id=member_id, now=now)
    if account is None:
        _upsert_account(db_session, member_id, now)
        account = db_session.execute(_lock_statement(member_id, now)).scalar_one()
    return account


def balance_of(db_session: Session, *, member_id: int) -> Balance:
    row = db_session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(PointsEntry.points), 0),
            sa.func.coalesce(sa.func.sum(PointsEntry.pending), 0),
        ).where(PointsEntry.member_id == member_id)
    ).one()
    return Balance(points=int(row[0]), pending=int(row[1]))


def entry_by_key(db_session: Session, key: str) -> PointsEntry | None:
    return db_session.execute(
        sa.select(PointsEntry).where(PointsEntry.idempotency_key == key)
    ).scalar_one_or_none()


def replayed(db_session: Session, entry: PointsEntry, member_id: int) -> LedgerResult:
    if entry.member_id != member_id:
        raise LoyaltyError(
            LoyaltyErrorCode.IDEMPOTENCY_CONFLICT,
            f"key {entry.idempotency_key!r} was already used for another member",
        )
    return _result(db_session, entry, created=False)


def _result(
    db_session: Session, entry: PointsEntry, *, created: bool, written_off: int = 0
) -> LedgerResult:
    now_balance = balance_of(db_session, member_id=entry.member_id)
    return LedgerResult(
        entry_id=entry.id,
        kind=entry.kind,
        points=entry.points if entry.kind != EntryKind.EARN or entry.points else entry.pending,
        balance=now_balance.points,
        pending=now_balance.pending,
        created=created,
        written_off=written_off,
    )


def append_entry(db_session: Session, **values: Any) -> PointsEntry:
    entry = PointsEntry(**values)
    db_session.add(entry)
    db_session.flush()
    return entry


def add_event(
    db_session: Session, *, type: str, event_id: str, member_id: int, now: datetime, **props: Any
) -> None:
    """Write an event for journeys and reports; a replay with the same id adds nothing."""
    exists = db_session.execute(
        sa.select(Event.id).where(Event.event_id == event_id)
    ).scalar_one_or_none()
    if exists is None:
        db_session.add(
            Event(
                event_id=event_id,
                type=type,
                occurred_at=now,
                member_id=member_id,
                identities={},
                properties=props,
                received_at=now,
            )
        )


def earn(
    db_session: Session,
    *,
    member_id: int,
    points: int,
    key: str,
    reason: str,
    now: datetime,
    available_at: datetime,
    expires_at: datetime | None,
    reference: str | None = None,
) -> LedgerResult:
    """Add a lot of earned points: spendable now, or pending until `available_at`."""
    if points <= 0:
        raise LoyaltyError(LoyaltyErrorCode.INVALID_POINTS, f"points must be > 0, got {points}")
    existing = entry_by_key(db_session, key)
    if existing is not None:
        return replayed(db_session, existing, member_id)
    pending = available_at > now
    lot = PointsLot(
        member_id=member_id,
        kind=LotKind.EARN,
        state=LotState.PENDING if pending else LotState.ACTIVE,
        points=points,
        remaining=points,
        available_at=available_at,
        expires_at=expires_at,
        created_at=now,
    )
    db_session.add(lot)
    db_session.flush()
    entry = append_entry(
        db_session,
        member_id=member_id,
        kind=EntryKind.EARN,
        points=0 if pending else points,
        pending=points if pending else 0,
        idempotency_key=key,
        reason=reason,
        reference=reference,
        lot_id=lot.id,
        created_at=now,
    )
    if not pending:
        _repay_debt(db_session, member_id=member_id)
    result = _result(db_session, entry, created=True)
    add_event(
        db_session,
        type="points_earned",
        event_id=f"points_earned:{key}",
        member_id=member_id,
        now=now,
        points=points,
        pending=pending,
        reason=reason,
        reference=reference,
        balance=result.balance,
    )
    return result


def _spendable_lots(db_session: Session, member_id: int) -> list[PointsLot]:
    return list(
        db_session.execute(
            sa.select(PointsLot)
            .where(
                PointsLot.member_id == member_id,
                PointsLot.state == LotState.ACTIVE,
                PointsLot.kind == LotKind.EARN,
                PointsLot.remaining > 0,
            )
            .order_by(PointsLot.expires_at.is_(None), PointsLot.expires_at, PointsLot.id)
        ).scalars()
    )


def draw_lots(db_session: Session, entry: PointsEntry, lots: list[PointsLot], wanted: int) -> int:
    """Take up to `wanted` points from `lots` in order, recording allocations; returns taken."""
    taken = 0
    for lot in lots:
        if taken == wanted:
            break
        part = min(lot.remaining, wanted - taken)
        if part <= 0:
            continue
        lot.remaining -= part
        taken += part
        db_session.add(PointsAllocation(entry_id=entry.id, lot_id=lot.id, points=part))
    db_session.flush()
    return taken


def _allocations(db_session: Session, entry_id: int) -> list[tuple[PointsAllocation, PointsLot]]:
    rows = db_session.execute(
        sa.select(PointsAllocation, PointsLot)
        .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
        .where(PointsAllocation.entry_id == entry_id)
        .order_by(PointsAllocation.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


def restore(
    db_session: Session, *, member_id: int, spend_key: str, key: str, now: datetime
) -> LedgerResult:
    """Give a spend's points back to the lots it drew from (a refund of a redemption)."""
    existing = entry_by_key(db_session, key)
    if existing is not None:
        return replayed(db_session, existing, member_id)
    spent = entry_by_key(db_session, spend_key)
    if spent is None or spent.member_id != member_id or spent.kind != EntryKind.SPEND:
        raise LoyaltyError(LoyaltyErrorCode.ENTRY_NOT_FOUND, f"no spend {spend_key!r}")
    entry = append_entry(
        db_session,
        member_id=member_id,
        kind=EntryKind.RESTORE,
        points=-spent.points,
        pending=0,
        idempotency_key=key,
        reason=f"restore of {spend_key}",
        related_entry_id=spent.id,
        created_at=now,
    )
    for allocation, lot in _allocations(db_session, spent.id):
        lot.remaining += allocation.points
        if lot.state == LotState.EXPIRED:
            expire_lot(db_session, lot, now=now, key=f"expire:{lot.id}:{entry.id}")
    db_session.flush()
    _repay_debt(db_session, member_id=member_id)
    return _result(db_session, entry, created=True)


def reverse_earn(
    db_session: Session,
    *,
    member_id: int,
    earn_key: str,
    key: str,
    policy: ReversalPolicy,
    now: datetime,
) -> LedgerResult:
    """Take back earned points (a refund) by a compensating entry, under the given policy."""
    existing = entry_by_key(db_session, key)
    if existing is not None:
        return replayed(db_session, existing, member_id)
    earned = entry_by_key(db_session, earn_key)
    if earned is None or earned.member_id != member_id or earned.kind != EntryKind.EARN:
        raise LoyaltyError(LoyaltyErrorCode.ENTRY_NOT_FOUND, f"no earning {earn_key!r}")
    lot = db_session.get(PointsLot, earned.lot_id)
    assert lot is not None  # every earn entry has its lot
    if lot.state == LotState.PENDING:
        entry = append_entry(
            db_session,
            member_id=member_id,
            kind=EntryKind.REVERSE,
            points=0,
            pending=-lot.points,
            idempotency_key=key,
            reason=f"reversal of {earn_key}",
            related_entry_id=earned.id,
            lot_id=lot.id,
            created_at=now,
        )
        lot.state, lot.remaining = LotState.REVERSED, 0
        db_session.flush()
        return _result(db_session, entry, created=True)
    return _reverse_spendable(db_session, earned, lot, key=key, policy=policy, now=now)


def _reverse_spendable(
    db_session: Session,
    earned: PointsEntry,
    lot: PointsLot,
    *,
    key: str,
    policy: ReversalPolicy,
    now: datetime,
) -> LedgerResult:
    member_id = earned.member_id
    expire_due(db_session, member_id=member_id, now=now)
    entry = append_entry(
        db_session,
        member_id=member_id,
        kind=EntryKind.REVERSE,
        points=0,
        pending=0,
        idempotency_key=key,
        reason=f"reversal of {earned.idempotency_key}",
        related_entry_id=earned.id,
        lot_id=lot.id,
        created_at=now,
    )
    # Points of this lot that already expired are gone: taking them again would punish twice.
    wanted = lot.points - _expired_from(db_session, lot.id)
    taken = 0
    if policy != ReversalPolicy.ONLY_PENDING:
        others = [x for x in _spendable_lots(db_session, member_id) if x.id != lot.id]
        first = [lot] if lot.state == LotState.ACTIVE else []
        taken = draw_lots(db_session, entry, first + others, wanted)
    shortfall = wanted - taken
    if shortfall and policy == ReversalPolicy.ALLOW_NEGATIVE:
        debt = PointsLot(
            member_id=member_id,
            kind=LotKind.DEBT,
            state=LotState.ACTIVE,
            points=-shortfall,
            remaining=-shortfall,
            available_at=now,
            created_at=now,
        )
        db_session.add(debt)
        db_session.flush()
        db_session.add(PointsAllocation(entry_id=entry.id, lot_id=debt.id, points=shortfall))
        taken, shortfall = wanted, 0
    entry.points = -taken
    if shortfall:
        append_entry(
            db_session,
            member_id=member_id,
            kind=EntryKind.WRITE_OFF,
            points=0,
            pending=0,
            idempotency_key=f"{key}:write_off",
            reason=f"{shortfall} points of {earned.idempotency_key} not recovered ({policy})",
            related_entry_id=earned.id,
            created_at=now,
        )
    db_session.flush()
    return _result(db_session, entry, created=True, written_off=shortfall)


def _expired_from(db_session: Session, lot_id: int) -> int:
    return -int(
        db_session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(PointsEntry.points), 0)).where(
                PointsEntry.lot_id == lot_id, PointsEntry.kind == EntryKind.EXPIRE
            )
        ).scalar_one()
    )


def repay_debt(db_session: Session, *, member_id: int) -> None:
    """For set-based jobs that wrote spendable lots without `earn` (caller holds the lock)."""
    _repay_debt(db_session, member_id=member_id)


def _repay_debt(db_session: Session, *, member_id: int) -> None:
    """Let active points pay off debt lots; both sums move together, so no entry is needed."""
    debts = list(
        db_session.execute(
            sa.select(PointsLot).where(
                PointsLot.member_id == member_id,
                PointsLot.kind == LotKind.DEBT,
                PointsLot.remaining < 0,
            )
        ).scalars()
    )
    for debt in debts:
        for lot in _spendable_lots(db_session, member_id):
            part = min(lot.remaining, -debt.remaining)
            lot.remaining -= part
            debt.remaining += part
            if debt.remaining == 0:
                break
    db_session.flush()


def expire_lot(db_session: Session, lot: PointsLot, *, now: datetime, key: str) -> None:
    if lot.remaining > 0:
        append_entry(
            db_session,
            member_id=lot.member_id,
            kind=EntryKind.EXPIRE,
            points=-lot.remaining,
            pending=0,
            idempotency_key=key,
            reason="expired",
            lot_id=lot.id,
            created_at=now,
        )
    lot.state, lot.remaining = LotState.EXPIRED, 0


def expire_due(db_session: Session, *, member_id: int, now: datetime) -> int:
    """Expire the member's active lots whose expiry has passed; returns points expired."""
    lots = db_session.execute(
        sa.select(PointsLot).where(
            PointsLot.member_id == member_id,
            PointsLot.state == LotState.ACTIVE,
            PointsLot.kind == LotKind.EARN,
            PointsLot.expires_at <= now,
        )
    ).scalars()
    total = 0
    for lot in lots:
        total += lot.remaining
        expire_lot(db_session, lot, now=now, key=f"expire:{lot.id}")
    db_session.flush()
    return total


def activate_due(db_session: Session, *, member_id: int, now: datetime) -> int:
    """Make the member's pending lots spendable once their refund window has passed."""
    lots = db_session.execute(
        sa.select(PointsLot).where(
            PointsLot.member_id == member_id,
            PointsLot.state == LotState.PENDING,
            PointsLot.available_at <= now,
        )
    ).scalars()
    total = 0
    for lot in lots:
        append_entry(
            db_session,
            member_id=member_id,
            kind=EntryKind.ACTIVATE,
            points=lot.points,
            pending=-lot.points,
            idempotency_key=f"activate:{lot.id}",
            reason="refund window passed",
            lot_id=lot.id,
            created_at=now,
        )
        lot.state = LotState.ACTIVE
        total += lot.points
    db_session.flush()
    if total:
        _repay_debt(db_session, member_id=member_id)
    return total


def active_lot_total(db_session: Session, *, member_id: int) -> int:
    """Sum of remaining points over active lots (debts included): always equals the balance."""
    return int(
        db_session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(PointsLot.remaining), 0)).where(
                PointsLot.member_id == member_id, PointsLot.state == LotState.ACTIVE
            )
        ).scalar_one()
    )


def history(db_session: Session, *, member_id: int, limit: int = 100) -> list[PointsEntry]:
    return list(
        db_session.execute(
            sa.select(PointsEntry)
            .where(PointsEntry.member_id == member_id)
            .order_by(PointsEntry.id.desc())
            .limit(limit)
        ).scalars()
    )
