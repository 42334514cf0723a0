"""Points, tier and stamp-card use cases. Each public function taking `session_factory` owns one
transaction per member and commits once; `grant_points` (taking a session) is the building block
journeys call inside their step transaction.

Every use case locks the member's account row first (ledger.lock_account), then re-reads
everything it decides on, so concurrent calls for one member serialise and a replayed business
key finds the first call's entry. Events go to the `events` table in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.identity.models import Member
from siyu.loyalty import earn_rules, ledger, points_spend, stamps, tiers
from siyu.loyalty.earn_rules import Behaviour, EarnRules
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import void_unused
from siyu.loyalty.ledger import Balance, LedgerResult, ReversalPolicy
from siyu.loyalty.models_points import (
    EntryKind,
    LotState,
    LoyaltyRules,
    PointsAccount,
    PointsEntry,
    PointsLot,
    StampCard,
    StampCompletion,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
Factory = sessionmaker[Session]


# ---- rules -------------------------------------------------------------------------------


def _rules_doc(db_session: Session, code: str) -> dict[str, Any] | None:
    row = db_session.execute(
        sa.select(LoyaltyRules).where(LoyaltyRules.code == code)
    ).scalar_one_or_none()
    return None if row is None else dict(row.rules)


def load_earn_rules(db_session: Session) -> EarnRules:
    return earn_rules.parse_earn_rules(_rules_doc(db_session, "earn"))


def load_tier_rules(db_session: Session) -> tiers.TierRules | None:
    doc = _rules_doc(db_session, "tiers")
    return None if doc is None else tiers.parse_tier_rules(doc)


def _save_rules(db_session: Session, code: str, rules: dict[str, Any], now: datetime) -> None:
    row = db_session.execute(
        sa.select(LoyaltyRules).where(LoyaltyRules.code == code)
    ).scalar_one_or_none()
    if row is None:
        db_session.add(LoyaltyRules(code=code, rules=rules, updated_at=now))
    else:
        row.rules, row.updated_at = rules, now


def save_earn_rules(session_factory: Factory, *, data: Any, now: datetime) -> EarnRules:
    """Validate and store the earn rules (they apply to earnings from now on)."""
    rules = earn_rules.parse_earn_rules(data)
    with transaction(session_factory) as db_session:
        _save_rules(db_session, "earn", rules.model_dump(mode="json"), now)
    return rules


def save_tier_rules(session_factory: Factory, *, data: Any, now: datetime) -> tiers.TierRules:
    """Validate and store the tier program; members move on their next evaluation."""
    rules = tiers.parse_tier_rules(data)
    with transaction(session_factory) as db_session:
        _save_rules(db_session, "tiers", rules.model_dump(mode="json"), now)
    return rules


# ---- coupons (the coupon engineer's engine) ----------------------------------------------


def _issue_coupon(
    db_session: Session, *, code: str, member_id: int, key: str, now: datetime
) -> str:
    from siyu.loyalty import service as coupon_service  # the coupon engine

    issued = coupon_service.issue_coupon(
        db_session,
        template_code=code,
        member_id=member_id,
        idempotency_key=key,
        now=now,
        source="points",
    )
    return f"coupon {code} #{issued.coupon_id}"


# ---- the building block journeys use ------------------------------------------------------


def _require_member(db_session: Session, member_id: int) -> None:
    if db_session.get(Member, member_id) is None:
        raise LoyaltyError(LoyaltyErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")


def _lock_member(db_session: Session, member_id: int, now: datetime) -> PointsAccount:
    """Lock the member's account: one round trip when it exists (then so does the member)."""
    account = ledger.lock_existing_account(db_session, member_id=member_id, now=now)
    if account is None:
        _require_member(db_session, member_id)
        account = ledger.lock_account(db_session, member_id=member_id, now=now)
    return account


def _expiry(rules: EarnRules, now: datetime) -> datetime:
    return now + timedelta(days=rules.expiry_days)


def grant_points(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    now: datetime,
) -> LedgerResult:
    """Give the member spendable points once per key, inside the caller's transaction."""
    _require_member(session, member_id)
    account = ledger.lock_account(session, member_id=member_id, now=now)
    rules = load_earn_rules(session)
    result = ledger.earn(
        session,
        member_id=member_id,
        points=points,
        key=idempotency_key,
        reason=reason,
        now=now,
        available_at=now,
        expires_at=_expiry(rules, now),
    )
    if result.created:
        _evaluate_tier(session, account, now)
    return result


def grant(
    session_factory: Factory,
    *,
    member_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    now: datetime,
) -> LedgerResult:
    with transaction(session_factory) as db_session:
        return grant_points(
            db_session,
            member_id=member_id,
            points=points,
            reason=reason,
            idempotency_key=idempotency_key,
            now=now,
        )


def _evaluate_tier(
    db_session: Session, account: PointsAccount, now: datetime
) -> tiers.TierChange | None:
    rules = load_tier_rules(db_session)
    if rules is None:
        return None
    return evaluate_tier_with(db_session, account, now, rules=rules)


def evaluate_tier_with(
    db_session: Session,
    account: PointsAccount,
    now: datetime,
    *,
    rules: tiers.TierRules,
    value: Decimal | None = None,
    events: list[dict[str, Any]] | None = None,
) -> tiers.TierChange | None:
    """Evaluate the member's tier under loaded rules (and a measure read in bulk, if given);
    an upgrade issues the level's upgrade coupons."""
    change = tiers.evaluate(
        db_session, rules=rules, account=account, now=now, value=value, events=events
    )
    if change is not None and change.kind == "tier_upgraded":
        for code in change.upgrade_coupons:
            key = f"tier:{account.member_id}:{change.to_code}:{int(now.timestamp())}:{code}"
            _issue_coupon(db_session, code=code, member_id=account.member_id, key=key, now=now)
    return change


# ---- spend, reverse, behaviour ------------------------------------------------------------


def spend(
    session_factory: Factory,
    *,
    member_id: int,
    points: int,
    idempotency_key: str,
    reason: str,
    now: datetime,
    reference: str | None = None,
) -> LedgerResult:
    """Spend points once per key; refused whole (nothing written) if the balance is short."""
    with transaction(session_factory) as db_session:
        _lock_member(db_session, member_id, now)
        return points_spend.spend(
            db_session,
            member_id=member_id,
            points=points,
            key=idempotency_key,
            reason=reason,
            now=now,
            reference=reference,
        )


def reverse(
    session_factory: Factory,
    *,
    member_id: int,
    original_key: str,
    idempotency_key: str,
    now: datetime,
    policy: ReversalPolicy | None = None,
) -> LedgerResult:
    """Undo an earning (take points back, by policy) or a spend (give points back)."""
    with transaction(session_factory) as db_session:
        _lock_member(db_session, member_id, now)
        original = ledger.entry_by_key(db_session, original_key)
        if original is not None and original.kind == EntryKind.SPEND:
            return ledger.restore(
                db_session,
                member_id=member_id,
                spend_key=original_key,
                key=idempotency_key,
                now=now,
            )
        chosen = policy or load_earn_rules(db_session).reversal_policy
        return ledger.reverse_earn(
            db_session,
            member_id=member_id,
            earn_key=original_key,
            key=idempotency_key,
            policy=chosen,
            now=now,
        )


def _earned_today(db_session: Session, member_id: int, reason: str, now: datetime) -> int:
    local = now.astimezone(SHANGHAI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(
        db_session.execute(
            sa.select(sa.func.count(PointsEntry.id)).where(
                PointsEntry.member_id == member_id,
                PointsEntry.kind == EntryKind.EARN,
                PointsEntry.reason == reason,
                PointsEntry.created_at >= start,
            )
        ).scalar_one()
    )


def earn_for_behaviour(
    session_factory: Factory,
    *,
    member_id: int,
    behaviour: Behaviour,
    idempotency_key: str,
    now: datetime,
) -> LedgerResult:
    """Points for a sign-in (once per business day, with streak bonus), a share or a favourite."""
    with transaction(session_factory) as db_session:
        _require_member(db_session, member_id)
        account = ledger.lock_account(db_session, member_id=member_id, now=now)
        rules = load_earn_rules(db_session)
        existing = ledger.entry_by_key(db_session, idempotency_key)
        if existing is not None:
            return ledger.earn(
                db_session,
                member_id=member_id,
                points=max(existing.points, 1),
                key=idempotency_key,
                reason=existing.reason,
                now=now,
                available_at=now,
                expires_at=None,
            )
        if behaviour == Behaviour.SIGN_IN:
            points, reason = _sign_in(db_session, account, rules, now)
        else:
            points, cap = earn_rules.behaviour_points(rules, behaviour)
            reason = str(behaviour)
            if _earned_today(db_session, member_id, reason, now) >= cap:
                raise LoyaltyError(
                    LoyaltyErrorCode.DAILY_CAP_REACHED,
                    f"member {member_id} reached today's {behaviour} cap of {cap}",
                )
        return ledger.earn(
            db_session,
            member_id=member_id,
            points=points,
            key=idempotency_key,
            reason=reason,
            now=now,
            available_at=now,
            expires_at=_expiry(rules, now),
        )


def _sign_in(
    db_session: Session, account: PointsAccount, rules: EarnRules, now: datetime
) -> tuple[int, str]:
    today = now.astimezone(SHANGHAI).date()
    if account.last_sign_in == today:
        raise LoyaltyError(
            LoyaltyErrorCode.DAILY_CAP_REACHED, f"member {account.member_id} signed in today"
        )
    streak = earn_rules.next_streak(
        last_sign_in=account.last_sign_in, streak=account.sign_in_streak, today=today
    )
    account.sign_in_streak, account.last_sign_in = streak, today
    return earn_rules.sign_in_points(rules, streak=streak), f"sign_in day {streak}"


# ---- redemption ---------------------------------------------------------------------------


def redeem_for_coupon(
    session_factory: Factory,
    *,
    member_id: int,
    coupon_code: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[LedgerResult, str]:
    """Exchange points for a coupon at its price in the earn rules; both or neither happen."""
    with transaction(session_factory) as db_session:
        _require_member(db_session, member_id)
        ledger.lock_account(db_session, member_id=member_id, now=now)
        price = load_earn_rules(db_session).coupon_prices.get(coupon_code)
        if price is None:
            raise LoyaltyError(
                LoyaltyErrorCode.TEMPLATE_NOT_FOUND, f"coupon {coupon_code} has no points price"
            )
        result = points_spend.spend(
            db_session,
            member_id=member_id,
            points=price,
            key=idempotency_key,
            reason=f"redeem coupon {coupon_code}",
            now=now,
            reference=coupon_code,
        )
        coupon = _issue_coupon(
            db_session, code=coupon_code, member_id=member_id, key=idempotency_key, now=now
        )
        return result, coupon


@dataclass(frozen=True)
class PointsAndCash:
    points: int
    points_value_fen: int
    cash_fen: int
    entry: LedgerResult


def pay_with_points(
    session_factory: Factory,
    *,
    member_id: int,
    total_fen: int,
    points: int,
    idempotency_key: str,
    now: datetime,
) -> PointsAndCash:
    """Points + cash: spend points worth part of the total; the rest is paid in cash."""
    with transaction(session_factory) as db_session:
        _lock_member(db_session, member_id, now)
        rate = load_earn_rules(db_session).points_per_yuan_cash
        value = points * 100 // rate
        if points <= 0 or value > total_fen or points * 100 % rate:
            raise LoyaltyError(
                LoyaltyErrorCode.INVALID_POINTS,
                f"{points} points do not pay a whole number of fen ≤ {total_fen} "
                f"({rate} points = ¥1)",
            )
        entry = points_spend.spend(
            db_session,
            member_id=member_id,
            points=points,
            key=idempotency_key,
            reason="points + cash",
            now=now,
        )
        return PointsAndCash(points, value, total_fen - value, entry)


# ---- reads --------------------------------------------------------------------------------


def balance(session_factory: Factory, *, member_id: int) -> Balance:
    with session_factory() as db_session:
        return ledger.balance_of(db_session, member_id=member_id)


@dataclass(frozen=True)
class EntryRead:
    id: int
    kind: str
    points: int
    pending: int
    reason: str
    reference: str | None
    idempotency_key: str
    created_at: datetime


def history(session_factory: Factory, *, member_id: int, limit: int = 100) -> list[EntryRead]:
    with session_factory() as db_session:
        return [
            EntryRead(
                e.id,
                e.kind,
                e.points,
                e.pending,
                e.reason,
                e.reference,
                e.idempotency_key,
                e.created_at,
            )
            for e in ledger.history(db_session, member_id=member_id, limit=limit)
        ]


@dataclass(frozen=True)
class TierStatus:
    member_id: int
    tier: str | None
    tier_name: str | None
    since: datetime | None
    period_end: datetime | None
    measure: Decimal | None
    next_tier: str | None
    to_next: Decimal | None
    multiplier: Decimal
    perks: list[str]


def tier_status(session_factory: Factory, *, member_id: int, now: datetime) -> TierStatus:
    with session_factory() as db_session:
        rules = load_tier_rules(db_session)
        account = db_session.get(PointsAccount, member_id) or PointsAccount(member_id=member_id)
        if rules is None:
            return TierStatus(member_id, None, None, None, None, None, None, None, Decimal(1), [])
        level = rules.levels[rules.rank(account.tier_code)]
        value = tiers.measure_value(db_session, rules, account, now)
        rank = rules.rank(level.code)
        after = rules.levels[rank + 1] if rank + 1 < len(rules.levels) else None
        return TierStatus(
            member_id,
            level.code,
            level.name,
            account.tier_since,
            account.tier_period_end,
            value,
            after.code if after else None,
            max(after.threshold - value, Decimal(0)) if after else None,
            tiers.multiplier_on(rules, level.code, now, SHANGHAI),
            level.perks,
        )


def tier_distribution(session_factory: Factory) -> list[tuple[str, int]]:
    """Members per tier (members without an account are on the base level)."""
    with session_factory() as db_session:
        rules = load_tier_rules(db_session)
        if rules is None:
            return []
        rows = db_session.execute(
            sa.select(PointsAccount.tier_code, sa.func.count()).group_by(PointsAccount.tier_code)
        ).all()
        counts: dict[str | None, int] = {code: int(n) for code, n in rows}
        members = db_session.execute(
            sa.select(sa.func.count(Member.id)).where(Member.merged_into_id.is_(None))
        ).scalar_one()
        placed = sum(n for code, n in counts.items() if rules.rank(code) > 0)
        base = rules.levels[0].code
        spread = [(base, int(members) - placed)]
        spread += [(lvl.code, int(counts.get(lvl.code, 0))) for lvl in rules.levels[1:]]
        return spread


def lots(session_factory: Factory, *, member_id: int) -> list[PointsLot]:
    with session_factory() as db_session:
        return list(
            db_session.execute(
                sa.select(PointsLot).where(PointsLot.member_id == member_id).order_by(PointsLot.id)
            ).scalars()
        )


# ---- stamp rewards (used by orders processing) ----------------------------------------


def _give_stamp_reward(
    db_session: Session, member_id: int, completion: StampCompletion, card: StampCard
) -> str:
    key = f"stamp:{card.code}:{member_id}:{completion.seq}"
    given = []
    if card.reward_points:
        rules = load_earn_rules(db_session)
        ledger.earn(
            db_session,
            member_id=member_id,
            points=card.reward_points,
            key=key,
            reason=f"stamp card {card.code}",
            now=completion.created_at,
            available_at=completion.created_at,
            expires_at=_expiry(rules, completion.created_at),
        )
        given.append(f"{card.reward_points} points")
    if card.reward_coupon:
        given.append(_reward_coupon(db_session, card.reward_coupon, member_id, key, completion))
    return ", ".join(given)


def _reward_coupon(
    db_session: Session, code: str, member_id: int, key: str, completion: StampCompletion
) -> str:
    """Issue the card's reward coupon; a refusal (template paused, budget spent) is recorded on
    the completion instead of failing the whole batch of orders it was earned in."""
    try:
        with db_session.begin_nested():
            return _issue_coupon(
                db_session, code=code, member_id=member_id, key=key, now=completion.created_at
            )
    except LoyaltyError as refused:
        return f"coupon {code} not issued ({refused.code.value})"[:120]


def _take_stamp_reward(
    db_session: Session, member_id: int, completion: StampCompletion, card: StampCard
) -> None:
    """A refund revoked the completion: reverse its points and void its coupon if unused."""
    key = f"stamp:{card.code}:{member_id}:{completion.seq}"
    if card.reward_coupon:
        state = void_unused(
            db_session,
            template_code=card.reward_coupon,
            member_id=member_id,
            idempotency_key=key,
            now=completion.revoked_at or completion.created_at,
            reason=f"stamp card {card.code} completion {completion.seq} revoked",
        )
        if state is not None:
            completion.reward = f"{completion.reward}; coupon {state}"[:200]
    if card.reward_points:
        ledger.reverse_earn(
            db_session,
            member_id=member_id,
            earn_key=key,
            key=f"{key}:revoked",
            policy=load_earn_rules(db_session).reversal_policy,
            now=completion.revoked_at or completion.created_at,
        )


def create_stamp_card(
    session_factory: Factory, *, spec: stamps.StampCardSpec, now: datetime
) -> stamps.CardStatus:
    with transaction(session_factory) as db_session:
        card = stamps.create_card(db_session, spec=spec, now=now)
        return stamps.CardStatus(card.code, card.name, card.stamps_required, 0, 0)


def stamp_cards(session_factory: Factory, *, member_id: int) -> list[stamps.CardStatus]:
    with session_factory() as db_session:
        return stamps.card_status(db_session, member_id=member_id)


def _member_ids_with_lots(db_session: Session, state: LotState, before: datetime) -> Iterable[int]:
    column = PointsLot.available_at if state == LotState.PENDING else PointsLot.expires_at
    return db_session.execute(
        sa.select(PointsLot.member_id)
        .where(PointsLot.state == state, column <= before)
        .distinct()
        .order_by(PointsLot.member_id)
    ).scalars()
