"""Error codes of the loyalty domain (coupons, points, tiers, stamp cards).

One Enum for the whole domain: adapters map each code to an HTTP status and a CLI exit code in
one place. The points engineer appends the points/tier/stamp codes below the coupon ones.
"""

from __future__ import annotations

from enum import StrEnum


class LoyaltyErrorCode(StrEnum):
    # coupons
    INVALID_TEMPLATE = "invalid_template"
    TEMPLATE_NOT_FOUND = "template_not_found"
    TEMPLATE_EXISTS = "template_exists"
    TEMPLATE_INACTIVE = "template_inactive"
    BUDGET_EXHAUSTED = "budget_exhausted"
    DAILY_BUDGET_EXHAUSTED = "daily_budget_exhausted"
    MEMBER_LIMIT_REACHED = "member_limit_reached"
    MEMBER_NOT_FOUND = "member_not_found"
    COUPON_NOT_FOUND = "coupon_not_found"
    COUPON_NOT_USABLE = "coupon_not_usable"
    COUPON_STATE_CONFLICT = "coupon_state_conflict"
    NOT_STACKABLE = "not_stackable"
    RESERVATION_NOT_FOUND = "reservation_not_found"
    REDEMPTION_NOT_FOUND = "redemption_not_found"
    ORDER_REVERSED = "order_reversed"  # the order was refunded: redeem under a new order number
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    PACK_NOT_FOUND = "pack_not_found"
    ISSUANCE_NOT_FOUND = "issuance_not_found"
    # points, tiers, stamp cards (appended by the points engineer)
    INSUFFICIENT_POINTS = "insufficient_points"
    INVALID_POINTS = "invalid_points"
    ENTRY_NOT_FOUND = "entry_not_found"
    INVALID_RULES = "invalid_rules"
    DAILY_CAP_REACHED = "daily_cap_reached"
    STAMP_CARD_NOT_FOUND = "stamp_card_not_found"
    STAMP_CARD_EXISTS = "stamp_card_exists"
    TIER_PROGRAM_MISSING = "tier_program_missing"


class LoyaltyError(Exception):
    """A refused loyalty operation; nothing was written when it is raised from a use case."""

    def __init__(self, code: LoyaltyErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
