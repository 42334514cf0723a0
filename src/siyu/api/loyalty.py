"""HTTP API of coupons for the POS and mini-program: templates, claiming, the member wallet and
the redemption protocol (usable → validate → reserve → redeem | release → reverse).

Amounts are integer fen. Every write is idempotent on the caller's key: `request_no` for
claims, `order_no` for reserve/redeem/release, `refund_no` for reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.loyalty import service, template_admin
from siyu.loyalty.coupons import Cart
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.redemption import DEFAULT_RESERVATION_SECONDS

router = APIRouter(prefix="/api/coupons", tags=["coupons"])
T = TypeVar("T")
_STATUS = {
    LoyaltyErrorCode.TEMPLATE_NOT_FOUND: 404,
    LoyaltyErrorCode.MEMBER_NOT_FOUND: 404,
    LoyaltyErrorCode.COUPON_NOT_FOUND: 404,
    LoyaltyErrorCode.RESERVATION_NOT_FOUND: 404,
    LoyaltyErrorCode.REDEMPTION_NOT_FOUND: 404,
    LoyaltyErrorCode.ISSUANCE_NOT_FOUND: 404,
    LoyaltyErrorCode.PACK_NOT_FOUND: 404,
    LoyaltyErrorCode.TEMPLATE_EXISTS: 409,
    LoyaltyErrorCode.BUDGET_EXHAUSTED: 409,
    LoyaltyErrorCode.DAILY_BUDGET_EXHAUSTED: 409,
    LoyaltyErrorCode.MEMBER_LIMIT_REACHED: 409,
    LoyaltyErrorCode.COUPON_STATE_CONFLICT: 409,
    LoyaltyErrorCode.IDEMPOTENCY_CONFLICT: 409,
    LoyaltyErrorCode.TEMPLATE_INACTIVE: 409,
    LoyaltyErrorCode.ORDER_REVERSED: 409,
    LoyaltyErrorCode.ENTRY_NOT_FOUND: 404,
    LoyaltyErrorCode.INSUFFICIENT_POINTS: 409,
    LoyaltyErrorCode.DAILY_CAP_REACHED: 409,
}


async def loyalty_refused(request: Request, error: Exception) -> JSONResponse:
    """One mapping for the coupon and points APIs (installed on the app): a refused call
    answers its error code with 404 (unknown thing), 409 (state or limit) or 422 (bad input)."""
    assert isinstance(error, LoyaltyError)
    return JSONResponse(
        status_code=_STATUS.get(error.code, 422),
        content={"detail": {"code": error.code.value, "message": error.message}},
    )


def _run(siyu: Siyu, use_case: Callable[[Session, datetime], T]) -> T:
    """One transaction per request; a refused call rolls back (loyalty_refused answers it)."""
    with transaction(siyu.session_factory) as db_session:
        return use_case(db_session, siyu.clock.now())


def _json(items: list[Any]) -> list[dict[str, Any]]:
    return [service.as_dict(i) for i in items]


class ClaimRequest(BaseModel):
    template_code: str
    member_id: int
    request_no: str = Field(min_length=1, max_length=128)


class CartRequest(BaseModel):
    member_id: int
    cart: Cart


class CouponsRequest(CartRequest):
    coupon_ids: list[int] = Field(min_length=1)
    order_no: str | None = Field(default=None, max_length=128)


class ReserveRequest(CouponsRequest):
    order_no: str = Field(min_length=1, max_length=128)
    ttl_seconds: int = Field(default=DEFAULT_RESERVATION_SECONDS, ge=10, le=86400)


class RedeemRequest(CartRequest):
    order_no: str = Field(min_length=1, max_length=128)
    coupon_ids: list[int] | None = None


class ReleaseRequest(BaseModel):
    order_no: str = Field(min_length=1, max_length=128)


class ReverseRequest(BaseModel):
    order_no: str = Field(min_length=1, max_length=128)
    refund_no: str = Field(min_length=1, max_length=128)


@router.get("/templates")
def list_templates(siyu: SiyuDep) -> list[dict[str, Any]]:
    return _run(siyu, lambda db, now: _json(service.list_templates(db)))


@router.post("/templates", status_code=201)
def create_template(spec: dict[str, Any], siyu: SiyuDep) -> dict[str, Any]:
    return _run(
        siyu,
        lambda db, now: service.as_dict(
            service.create_template(db, spec=spec, now=now, actor="api")
        ),
    )


@router.post("/templates/{code}/pause")
def pause_template(code: str, siyu: SiyuDep) -> dict[str, str]:
    return _run(
        siyu,
        lambda db, now: {
            "code": code,
            "status": template_admin.pause_template(db, code=code, now=now, actor="api"),
        },
    )


@router.post("/templates/{code}/resume")
def resume_template(code: str, siyu: SiyuDep) -> dict[str, str]:
    return _run(
        siyu,
        lambda db, now: {
            "code": code,
            "status": template_admin.resume_template(db, code=code, now=now, actor="api"),
        },
    )


@router.post("/claim")
def claim(body: ClaimRequest, siyu: SiyuDep) -> dict[str, Any]:
    """Issue one coupon to the member (a claim button, a channel code, a POS gift)."""
    return _run(
        siyu,
        lambda db, now: service.as_dict(
            service.issue_coupon(
                db,
                template_code=body.template_code,
                member_id=body.member_id,
                idempotency_key=f"api:{body.request_no}",
                now=now,
                tz=siyu.settings.tz,
                source="api",
            )
        ),
    )


@router.get("/wallet/{member_id}")
def wallet(member_id: int, siyu: SiyuDep) -> list[dict[str, Any]]:
    return _run(
        siyu, lambda db, now: _json(service.member_wallet(db, member_id=member_id, now=now))
    )


@router.post("/usable")
def usable(body: CartRequest, siyu: SiyuDep) -> list[dict[str, Any]]:
    """The member's coupons usable on this cart now, with the discount each gives."""
    return _run(
        siyu,
        lambda db, now: _json(
            service.usable_coupons(
                db, member_id=body.member_id, cart=body.cart, now=now, tz=siyu.settings.tz
            )
        ),
    )


def _validation(v: service.Validation) -> dict[str, Any]:
    return {"discount_fen": v.discount_fen, "coupons": _json(v.coupons)}


@router.post("/validate")
def validate(body: CouponsRequest, siyu: SiyuDep) -> dict[str, Any]:
    return _run(
        siyu,
        lambda db, now: _validation(
            service.validate_coupons(
                db,
                member_id=body.member_id,
                coupon_ids=body.coupon_ids,
                cart=body.cart,
                now=now,
                tz=siyu.settings.tz,
                order_no=body.order_no,
            )
        ),
    )


@router.post("/reserve")
def reserve(body: ReserveRequest, siyu: SiyuDep) -> dict[str, Any]:
    return _run(
        siyu,
        lambda db, now: _validation(
            service.reserve_coupons(
                db,
                member_id=body.member_id,
                coupon_ids=body.coupon_ids,
                order_no=body.order_no,
                cart=body.cart,
                now=now,
                tz=siyu.settings.tz,
                ttl_seconds=body.ttl_seconds,
            )
        ),
    )


@router.post("/redeem")
def redeem(body: RedeemRequest, siyu: SiyuDep) -> list[dict[str, Any]]:
    """Through the process's RedemptionBatcher: concurrent redemptions share one write."""
    records = siyu.redemptions.redeem(
        member_id=body.member_id,
        order_no=body.order_no,
        cart=body.cart,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        coupon_ids=body.coupon_ids,
    )
    return _json(records)


@router.post("/release")
def release(body: ReleaseRequest, siyu: SiyuDep) -> dict[str, int]:
    return _run(
        siyu,
        lambda db, now: {"released": service.release_coupons(db, order_no=body.order_no, now=now)},
    )


@router.post("/reverse")
def reverse(body: ReverseRequest, siyu: SiyuDep) -> list[dict[str, Any]]:
    return _run(
        siyu,
        lambda db, now: _json(
            service.reverse_redemptions(
                db, order_no=body.order_no, refund_no=body.refund_no, now=now
            )
        ),
    )


@router.get("/redemptions")
def redemptions(siyu: SiyuDep, template_code: str | None = None) -> list[dict[str, Any]]:
    return _run(
        siyu,
        lambda db, now: [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            for row in service.redemption_log(db, template_code=template_code)
        ],
    )
