"""HTTP API of points and tiers for the POS and mini-program: balance, history, earn, spend,
reverse, redeem for a coupon, points + cash, and the member's tier.

Every write is idempotent on the caller's `idempotency_key` (order number, request number):
the same key again returns the first result with `created: false`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from siyu.api.deps import SiyuDep
from siyu.loyalty import points_service
from siyu.loyalty.earn_rules import Behaviour
from siyu.loyalty.ledger import LedgerResult, ReversalPolicy

router = APIRouter(prefix="/api/points", tags=["points"])


class EarnBody(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=160)
    points: int | None = Field(default=None, gt=0)
    reason: str = Field(default="api", max_length=120)
    behaviour: Behaviour | None = None


class SpendBody(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=160)
    points: int = Field(gt=0)
    reason: str = Field(default="api", max_length=120)
    reference: str | None = Field(default=None, max_length=160)


class ReverseBody(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=160)
    original_key: str = Field(min_length=1, max_length=200)
    policy: ReversalPolicy | None = None


class RedeemBody(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=160)
    coupon_code: str = Field(min_length=1, max_length=64)


class PayBody(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=160)
    total_fen: int = Field(gt=0)
    points: int = Field(gt=0)


def _result(result: LedgerResult) -> dict[str, Any]:
    return asdict(result)


@router.get("/{member_id}")
def balance(member_id: int, siyu: SiyuDep) -> dict[str, Any]:
    found = points_service.balance(siyu.session_factory, member_id=member_id)
    tier = points_service.tier_status(
        siyu.session_factory, member_id=member_id, now=siyu.clock.now()
    )
    return {
        "member_id": member_id,
        "balance": found.points,
        "pending": found.pending,
        "tier": _tier(tier),
    }


def _tier(status: points_service.TierStatus) -> dict[str, Any]:
    data = asdict(status)
    for key in ("measure", "to_next", "multiplier"):
        data[key] = None if data[key] is None else str(data[key])
    return data


@router.get("/{member_id}/history")
def history(member_id: int, siyu: SiyuDep, limit: int = 100) -> list[dict[str, Any]]:
    entries = points_service.history(siyu.session_factory, member_id=member_id, limit=limit)
    return [asdict(e) for e in entries]


@router.get("/{member_id}/tier")
def tier(member_id: int, siyu: SiyuDep) -> dict[str, Any]:
    return _tier(
        points_service.tier_status(siyu.session_factory, member_id=member_id, now=siyu.clock.now())
    )


@router.post("/{member_id}/earn")
def earn(member_id: int, body: EarnBody, siyu: SiyuDep) -> dict[str, Any]:
    if body.behaviour is not None:
        return _result(
            points_service.earn_for_behaviour(
                siyu.session_factory,
                member_id=member_id,
                behaviour=body.behaviour,
                idempotency_key=body.idempotency_key,
                now=siyu.clock.now(),
            )
        )
    if body.points is None:
        raise HTTPException(
            422, detail={"code": "invalid_points", "message": "give points or behaviour"}
        )
    return _result(
        points_service.grant(
            siyu.session_factory,
            member_id=member_id,
            points=body.points,
            reason=body.reason,
            idempotency_key=body.idempotency_key,
            now=siyu.clock.now(),
        )
    )


@router.post("/{member_id}/spend")
def spend(member_id: int, body: SpendBody, siyu: SiyuDep) -> dict[str, Any]:
    return _result(
        points_service.spend(
            siyu.session_factory,
            member_id=member_id,
            points=body.points,
            idempotency_key=body.idempotency_key,
            reason=body.reason,
            reference=body.reference,
            now=siyu.clock.now(),
        )
    )


@router.post("/{member_id}/reverse")
def reverse(member_id: int, body: ReverseBody, siyu: SiyuDep) -> dict[str, Any]:
    return _result(
        points_service.reverse(
            siyu.session_factory,
            member_id=member_id,
            original_key=body.original_key,
            idempotency_key=body.idempotency_key,
            policy=body.policy,
            now=siyu.clock.now(),
        )
    )


@router.post("/{member_id}/redeem-coupon")
def redeem_coupon(member_id: int, body: RedeemBody, siyu: SiyuDep) -> dict[str, Any]:
    result, coupon = points_service.redeem_for_coupon(
        siyu.session_factory,
        member_id=member_id,
        coupon_code=body.coupon_code,
        idempotency_key=body.idempotency_key,
        now=siyu.clock.now(),
    )
    return {**_result(result), "coupon": coupon}


@router.post("/{member_id}/pay")
def pay(member_id: int, body: PayBody, siyu: SiyuDep) -> dict[str, Any]:
    paid = points_service.pay_with_points(
        siyu.session_factory,
        member_id=member_id,
        total_fen=body.total_fen,
        points=body.points,
        idempotency_key=body.idempotency_key,
        now=siyu.clock.now(),
    )
    return {
        "points": paid.points,
        "points_value_fen": paid.points_value_fen,
        "cash_fen": paid.cash_fen,
        **{"entry": _result(paid.entry)},
    }
