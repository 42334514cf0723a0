"""Journey actions the loyalty domain provides (found by `siyu.journeys.plugins`).

`issue_coupon` issues one coupon of `template` (or every coupon of `pack`) to the enrolled
member, keyed by the step's idempotency key so a retried step cannot issue twice. A refusal
by the rules (budget spent, member limit reached, template paused) is an outcome of the step,
not a failure: the journey goes on and the outcome says why no coupon was given.
`grant_points` (points_actions.py) is provided from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from siyu.loyalty import issuance
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode

if TYPE_CHECKING:
    from siyu.journeys.actions import ActionContext, JourneyAction

# Refusals that are business outcomes; anything else (unknown template…) fails the step.
_OUTCOMES = {
    LoyaltyErrorCode.BUDGET_EXHAUSTED,
    LoyaltyErrorCode.DAILY_BUDGET_EXHAUSTED,
    LoyaltyErrorCode.MEMBER_LIMIT_REACHED,
    LoyaltyErrorCode.TEMPLATE_INACTIVE,
}


class IssueCouponAction:
    kind = "issue_coupon"

    def validate(self, params: Mapping[str, Any]) -> None:
        from siyu.journeys.errors import JourneyError, JourneyErrorCode

        if bool(params.get("template")) == bool(params.get("pack")):
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION,
                "action issue_coupon: give exactly one of `template` or `pack`",
            )

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        from siyu.loyalty import service

        try:
            if params.get("pack"):
                coupons = service.issue_pack(
                    ctx.db_session,
                    pack_code=str(params["pack"]),
                    member_id=ctx.member_id,
                    idempotency_key=ctx.idempotency_key,
                    now=ctx.now,
                    tz=ctx.tz,
                )
                return f"issued pack {params['pack']} ({len(coupons)} coupons)"
            coupon = issuance.issue_coupon(
                ctx.db_session,
                template_code=str(params["template"]),
                member_id=ctx.member_id,
                idempotency_key=ctx.idempotency_key,
                now=ctx.now,
                tz=ctx.tz,
                source="journey",
            )
        except LoyaltyError as exc:
            if exc.code in _OUTCOMES:
                return f"no coupon: {exc.message}"
            raise
        return f"issued coupon {coupon.coupon_id} ({coupon.template_code})"


def journey_actions() -> list[JourneyAction]:
    from siyu.loyalty.points_actions import GrantPoints  # points part of the loyalty issue

    return [IssueCouponAction(), GrantPoints()]
