"""Tiers: the program rules, the qualifying measure, upgrades, period-end downgrades and the
warning before a downgrade. Session-level functions never commit; the caller holds the lock of
the member's points account (ledger.lock_account) while calling them.

Rules (decided where the issue is silent):
- the qualifying measure is paid spend in yuan of non-refunded orders, or points earned (lots
  created, reversed ones excluded), over a window: `rolling` = the last `window_days` days;
  `anniversary` = since the start of the member's current tier period (or the last
  `window_days` days while the member has no period yet);
- an upgrade happens as soon as the measure reaches a higher level's threshold and starts a
  new period of `period_days`; the base level (threshold 0) has no period and never expires;
- at period end the member keeps the tier if still qualifying (a new period starts), else
  drops one level (`one_step`, never below the qualifying one) or to the qualifying level;
- `warning_days` before the period end, a member who would drop gets one
  tier_downgrade_warning per period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.ledger import add_event
from siyu.loyalty.models_points import LotState, PointsAccount, PointsLot
from siyu.orders.models import OrderLine


class Measure(StrEnum):
    SPEND = "spend"
    POINTS_EARNED = "points_earned"


class WindowKind(StrEnum):
    ROLLING = "rolling"
    ANNIVERSARY = "anniversary"


class DowngradePolicy(StrEnum):
    ONE_STEP = "one_step"
    TO_QUALIFYING = "to_qualifying"


class TierLevel(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str
    threshold: Decimal = Field(ge=0)
    multiplier: Decimal = Field(default=Decimal(1), gt=0)
    upgrade_coupons: list[str] = Field(default_factory=list)
    member_day_weekday: int | None = Field(default=None, ge=0, le=6)  # 0 = Monday
    member_day_multiplier: Decimal = Field(default=Decimal(1), gt=0)
    perks: list[str] = Field(default_factory=list)


class TierRules(BaseModel):
    measure: Measure = Measure.SPEND
    window: WindowKind = WindowKind.ROLLING
    window_days: int = Field(default=365, ge=1)
    period_days: int = Field(default=365, ge=1)
    downgrade: DowngradePolicy = DowngradePolicy.ONE_STEP
    warning_days: int = Field(default=30, ge=0)
    levels: list[TierLevel]

    @model_validator(mode="after")
    def _levels_ordered(self) -> TierRules:
        thresholds = [level.threshold for level in self.levels]
        if not self.levels or thresholds[0] != 0:
            raise ValueError("the first level must have threshold 0 (the base level)")
        if thresholds != sorted(set(thresholds)):
            raise ValueError("level thresholds must be strictly increasing")
        if len({level.code for level in self.levels}) != len(self.levels):
            raise ValueError("level codes must be unique")
        return self

    def rank(self, code: str | None) -> int:
        for index, level in enumerate(self.levels):
            if level.code == code:
                return index
        return 0  # no tier yet, or a level that was removed: the base level

    def qualifying(self, value: Decimal) -> TierLevel:
        return [level for level in self.levels if level.threshold <= value][-1]


def parse_tier_rules(data: Any) -> TierRules:
    try:
        return TierRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in exc.errors()
        )
        raise LoyaltyError(LoyaltyErrorCode.INVALID_RULES, f"tier rules: {problems}") from exc


def multiplier_on(rules: TierRules | None, code: str | None, at: datetime, tz: ZoneInfo) -> Decimal:
    """The points multiplier of a tier at an instant (member day included)."""
    if rules is None:
        return Decimal(1)
    level = rules.levels[rules.rank(code)]
    if level.member_day_weekday is not None and at.astimezone(tz).weekday() == (
        level.member_day_weekday
    ):
        return level.multiplier * level.member_day_multiplier
    return level.multiplier


def _window_start(rules: TierRules, account: PointsAccount, now: datetime) -> datetime:
    if rules.window == WindowKind.ANNIVERSARY and account.tier_period_end is not None:
        return account.tier_period_end - timedelta(days=rules.period_days)
    return now - timedelta(days=rules.window_days)


def measure_value(
    db_session: Session, rules: TierRules, account: PointsAccount, now: datetime
) -> Decimal:
    start = _window_start(rules, account, now)
    if rules.measure == Measure.POINTS_EARNED:
        total = db_session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(PointsLot.points), 0)).where(
                PointsLot.member_id == account.member_id,
                PointsLot.kind == "earn",
                PointsLot.state != LotState.REVERSED,
                PointsLot.created_at > start,
                PointsLot.created_at <= now,
            )
        ).scalar_one()
        return Decimal(total)
    refunded = sa.select(OrderLine.order_id).where(
        OrderLine.member_id == account.member_id, OrderLine.status == "refunded"
    )
    spent = db_session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(OrderLine.amount), 0)).where(
            OrderLine.member_id == account.member_id,
            OrderLine.status == "paid",
            OrderLine.paid_at > start,
            OrderLine.paid_at <= now,
            OrderLine.order_id.not_in(refunded),
        )
    ).scalar_one()
    return Decimal(spent)


@dataclass(frozen=True)
class TierChange:
    member_id: int
    kind: str  # tier_upgraded | tier_downgraded | tier_downgrade_warning | tier_renewed
    from_code: str | None
    to_code: str | None
    upgrade_coupons: tuple[str, ...] = ()


def _set_tier(account: PointsAccount, rules: TierRules, level: TierLevel, now: datetime) -> None:
    account.tier_code = level.code
    account.tier_since = now
    base = rules.rank(level.code) == 0
    account.tier_period_end = None if base else now + timedelta(days=rules.period_days)
    account.tier_warned_for = None


def evaluate(
    db_session: Session,
    *,
    rules: TierRules,
    account: PointsAccount,
    now: datetime,
    value: Decimal | None = None,
    events: list[dict[str, Any]] | None = None,
) -> TierChange | None:
    """Upgrade now, downgrade or renew at period end, or warn before the end; at most one.
    `value` is the member's qualifying measure when the caller read it for many members;
    `events` collects the event rows for the caller to insert in bulk (else written here)."""
    current = rules.rank(account.tier_code)
    if value is None:
        value = measure_value(db_session, rules, account, now)
    qualifying = rules.qualifying(value)
    target = rules.rank(qualifying.code)
    before = account.tier_code
    if target > current:
        _set_tier(account, rules, qualifying, now)
        change = TierChange(
            account.member_id,
            "tier_upgraded",
            before,
            qualifying.code,
            tuple(qualifying.upgrade_coupons),
        )
    elif account.tier_period_end is not None and now >= account.tier_period_end:
        change = _period_end(account, rules, current, target, now)
    elif _warning_due(account, rules, current, target, now):
        assert account.tier_period_end is not None
        account.tier_warned_for = account.tier_period_end
        change = TierChange(
            account.member_id, "tier_downgrade_warning", before, rules.levels[target].code
        )
    else:
        return None
    _tier_event(db_session, change, account, value, now, events)
    return change


def _period_end(
    account: PointsAccount, rules: TierRules, current: int, target: int, now: datetime
) -> TierChange:
    before = account.tier_code
    if target >= current:
        assert account.tier_period_end is not None
        account.tier_period_end = account.tier_period_end + timedelta(days=rules.period_days)
        account.tier_warned_for = None
        return TierChange(account.member_id, "tier_renewed", before, before)
    new = max(target, current - 1) if rules.downgrade == DowngradePolicy.ONE_STEP else target
    _set_tier(account, rules, rules.levels[new], now)
    return TierChange(account.member_id, "tier_downgraded", before, rules.levels[new].code)


def _warning_due(
    account: PointsAccount, rules: TierRules, current: int, target: int, now: datetime
) -> bool:
    end = account.tier_period_end
    return (
        end is not None
        and target < current
        and account.tier_warned_for != end
        and now >= end - timedelta(days=rules.warning_days)
    )


def _tier_event(
    db_session: Session,
    change: TierChange,
    account: PointsAccount,
    value: Decimal,
    now: datetime,
    events: list[dict[str, Any]] | None,
) -> None:
    event_id = f"{change.kind}:{change.member_id}:{change.to_code}:{int(now.timestamp())}"
    props = {
        "from_tier": change.from_code,
        "to_tier": change.to_code,
        "measure": str(value),
        "period_end": account.tier_period_end.isoformat() if account.tier_period_end else None,
    }
    if events is None:
        add_event(
            db_session,
            type=change.kind,
            event_id=event_id,
            member_id=change.member_id,
            now=now,
            **props,
        )
        return
    events.append(
        {
            "event_id": event_id,
            "type": change.kind,
            "occurred_at": now,
            "member_id": change.member_id,
            "identities": {},
            "properties": props,
            "received_at": now,
        }
    )


def due_member_ids(db_session: Session, *, rules: TierRules, now: datetime) -> list[int]:
    """Members whose period ends, or whose warning window opens, by now."""
    horizon = now + timedelta(days=rules.warning_days)
    return list(
        db_session.execute(
            sa.select(PointsAccount.member_id)
            .where(PointsAccount.tier_period_end.is_not(None))
            .where(PointsAccount.tier_period_end <= horizon)
            .where(
                sa.or_(
                    PointsAccount.tier_period_end <= now,
                    PointsAccount.tier_warned_for.is_(None),
                    PointsAccount.tier_warned_for != PointsAccount.tier_period_end,
                )
            )
            .order_by(PointsAccount.member_id)
        ).scalars()
    )
