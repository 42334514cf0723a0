"""Earn rules: how many points a purchase, a sign-in, a share or a favourite is worth, how long
points stay pending and when they expire, and how refunds take them back.

Pure logic; the rules document is stored in `loyalty_rules` (code 'earn') and defaults apply
when none was saved. Decisions where the issue is silent:
- a purchase earns floor(yuan × points_per_yuan × tier multiplier) per order line, pending for
  `pending_days` (the refund window) and expiring `expiry_days` after it was earned;
- behaviour points (sign-in, share, favourite) are spendable at once; share and favourite have
  a daily cap counted in the business time zone;
- a sign-in streak counts consecutive business days; day N of a streak earns `sign_in_points`
  plus the bonus of the largest `streak_bonus` key ≤ N that divides N (7 → weekly bonus).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.ledger import ReversalPolicy


class Behaviour(StrEnum):
    SIGN_IN = "sign_in"
    SHARE = "share"
    FAVOURITE = "favourite"


class EarnRules(BaseModel):
    points_per_yuan: Decimal = Field(default=Decimal(1), ge=0)
    pending_days: int = Field(default=7, ge=0)
    expiry_days: int = Field(default=365, ge=1)
    expiry_reminder_days: int = Field(default=30, ge=0)
    reversal_policy: ReversalPolicy = ReversalPolicy.WITHIN_BALANCE
    sign_in_points: int = Field(default=5, ge=0)
    streak_bonus: dict[int, int] = Field(default_factory=lambda: {7: 20})
    share_points: int = Field(default=10, ge=0)
    share_daily_cap: int = Field(default=3, ge=0)
    favourite_points: int = Field(default=5, ge=0)
    favourite_daily_cap: int = Field(default=5, ge=0)
    points_per_yuan_cash: int = Field(default=100, ge=1)  # points + cash: 100 points = ¥1
    coupon_prices: dict[str, int] = Field(default_factory=dict)  # coupon code → points


def parse_earn_rules(data: Any) -> EarnRules:
    try:
        return EarnRules.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise LoyaltyError(LoyaltyErrorCode.INVALID_RULES, f"earn rules: {problems}") from exc


def points_for_amount(rules: EarnRules, *, amount: Decimal, multiplier: Decimal) -> int:
    """Points for a paid amount in yuan, rounded down (a fraction of a point is never owed)."""
    raw = amount * rules.points_per_yuan * multiplier
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))


def next_streak(*, last_sign_in: date | None, streak: int, today: date) -> int:
    """The streak length after signing in today (1 when a day was missed)."""
    if last_sign_in is not None and (today - last_sign_in).days == 1:
        return streak + 1
    return 1


def sign_in_points(rules: EarnRules, *, streak: int) -> int:
    bonus = 0
    for length in sorted(rules.streak_bonus):
        if length <= streak and streak % length == 0:
            bonus = rules.streak_bonus[length]
    return rules.sign_in_points + bonus


def behaviour_points(rules: EarnRules, behaviour: Behaviour) -> tuple[int, int]:
    """(points, daily cap) of a share or favourite."""
    if behaviour == Behaviour.SHARE:
        return rules.share_points, rules.share_daily_cap
    return rules.favourite_points, rules.favourite_daily_cap
