"""A provider module shaped like `siyu.loyalty.journey_actions` will be (used by test_plugins)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from siyu.journeys.actions import ActionContext, JourneyAction
from siyu.journeys.errors import JourneyError, JourneyErrorCode


class IssueCoupon:
    kind = "issue_coupon"

    def validate(self, params: Mapping[str, Any]) -> None:
        if not params.get("template"):
            raise JourneyError(JourneyErrorCode.INVALID_DEFINITION, "issue_coupon: `template`")

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        return f"coupon {params['template']} keyed {ctx.idempotency_key}"


def journey_actions() -> list[JourneyAction]:
    return [IssueCoupon()]
