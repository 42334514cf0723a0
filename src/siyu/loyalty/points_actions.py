"""The `grant_points` journey action: give the member points once per journey step occurrence.

Returned by loyalty.journey_actions.journey_actions(). Params: `points` (int > 0), `reason`.
The step's idempotency key is the ledger key, so a retried step never grants twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from siyu.journeys.actions import ActionContext
from siyu.journeys.errors import JourneyError, JourneyErrorCode
from siyu.loyalty.points_service import grant_points


class GrantPoints:
    kind = "grant_points"

    def validate(self, params: Mapping[str, Any]) -> None:
        points = params.get("points")
        if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION,
                f"grant_points: `points` must be a positive integer, got {points!r}",
            )

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        result = grant_points(
            ctx.db_session,
            member_id=ctx.member_id,
            points=int(params["points"]),
            reason=str(params.get("reason") or f"journey {ctx.journey}"),
            idempotency_key=f"journey:{ctx.idempotency_key}",
            now=ctx.now,
        )
        return f"granted {params['points']} points (balance {result.balance})"
