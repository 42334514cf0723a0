"""The redemption protocol a POS or mini-program follows: list usable coupons for a cart,
validate, reserve (with a timeout), redeem, release, reverse on refund.

Every state change is one conditional UPDATE whose WHERE clause restates the rule
(`state = 'issued' AND valid_until > now AND member_id = …`), taken on coupons in primary-key
order, so two requests racing for one coupon cannot both win and cannot deadlock; the loser
sees rowcount 0 and the whole call is refused (its transaction rolls back). A reservation
whose timeout has passed counts as released at once, before the worker tidies it up.
Idempotency keys are the caller's order number (reserve, redeem, release) and refund number
(reverse); the redemption rows that carry them are never deleted, so they outlive any refund
window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.ingest.models import Event
from siyu.loyalty import redeem_write
from siyu.loyalty.coupons import Cart, CouponTerms, quote, stacking_refusal
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import SHANGHAI, coupon_event
from siyu.loyalty.models import (
    Coupon,
    CouponRedemption,
    CouponState,
    CouponTemplate,
    RedemptionState,
)

DEFAULT_RESERVATION_SECONDS = 900
_coupons = cast(sa.Table, Coupon.__table__)


@dataclass(frozen=True)
class CouponQuote:
    coupon_id: int
    template_id: int
    template_code: str
    name: str
    kind: str
    valid_until: datetime
    usable: bool
    discount_fen: int
    gift_sku: str | None
    reason: str
    exclusive: bool
    stack_group: str | None


@dataclass(frozen=True)
class Validation:
    coupons: list[CouponQuote]

    @property
    def discount_fen(self) -> int:
        return sum(q.discount_fen for q in self.coupons)


@dataclass(frozen=True)
class RedemptionRecord:
    redemption_id: int
    coupon_id: int
    template_code: str
    order_no: str
    state: str
    discount_fen: int
    redeemed_at: datetime
    refund_no: str | None


def terms_of(template: CouponTemplate) -> CouponTerms:
    return CouponTerms(
        code=template.code,
        name=template.name,
        kind=template.kind,
        threshold_fen=template.threshold_fen,
        value_fen=template.value_fen,
        percent_off=template.percent_off,
        cap_fen=template.cap_fen,
        gift_sku=template.gift_sku,
        scope=dict(template.scope or {}),
        weekdays=tuple(template.weekdays or ()),
        time_start=template.time_start,
        time_end=template.time_end,
        exclusive=template.exclusive,
        stack_group=template.stack_group,
    )


def _quote(
    coupon: Coupon, template: CouponTemplate, cart: Cart, now: datetime, tz: ZoneInfo
) -> CouponQuote:
    if not coupon.valid_from <= now < coupon.valid_until:
        worth = None
        reason = "not yet valid" if now < coupon.valid_from else "expired"
    else:
        worth = quote(terms_of(template), cart, at=now, tz=tz)
        reason = worth.reason
    return CouponQuote(
        coupon_id=coupon.id,
        template_id=template.id,
        template_code=template.code,
        name=template.name,
        kind=template.kind,
        valid_until=coupon.valid_until,
        usable=bool(worth and worth.usable),
        discount_fen=worth.discount_fen if worth else 0,
        gift_sku=worth.gift_sku if worth else None,
        reason=reason,
        exclusive=template.exclusive,
        stack_group=template.stack_group,
    )


def _free(now: datetime) -> sa.ColumnElement[bool]:
    """Free to take: issued, or reserved by a reservation whose timeout has passed."""
    c = _coupons.c
    return (c.state == CouponState.ISSUED) | (
        (c.state == CouponState.RESERVED) & (c.reservation_expires_at <= now)
    )


def usable_coupons(
    db_session: Session, *, member_id: int, cart: Cart, now: datetime, tz: ZoneInfo = SHANGHAI
) -> list[CouponQuote]:
    """The member's coupons that could be used on this cart now, best discount first."""
    rows = db_session.execute(
        sa.select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.member_id == member_id, _free(now), Coupon.valid_until > now)
        .order_by(Coupon.id)
        .execution_options(populate_existing=True)
    ).all()
    quotes = [_quote(c, t, cart, now, tz) for c, t in rows]
    return sorted((q for q in quotes if q.usable), key=lambda q: (-q.discount_fen, q.valid_until))


def _load_statement() -> sa.Select[Coupon, CouponTemplate, str | None]:
    """Built once: the coupons (by id), their templates, and what an order already did
    ('redeemed' if it has a standing redemption, else 'reversed' if it was refunded)."""
    r = CouponRedemption
    prior = (
        sa.select(r.state)
        .where(r.order_no == sa.bindparam("order_no"))
        .order_by(sa.case((r.state == RedemptionState.REDEEMED.value, 0), else_=1))
        .limit(1)
        .scalar_subquery()
        .label("prior")
    )
    return (
        sa.select(Coupon, CouponTemplate, prior)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.id.in_(sa.bindparam("coupon_ids", expanding=True)))
        .order_by(Coupon.id)
        .execution_options(populate_existing=True)
    )


_LOAD = _load_statement()


def _load(
    db_session: Session, member_id: int, coupon_ids: list[int], *, order_no: str | None = None
) -> tuple[list[tuple[Coupon, CouponTemplate]], str | None]:
    """The member's coupons with their templates, in id order, and (in the same round trip)
    what order `order_no` already did: 'redeemed', 'reversed' or None."""
    rows = db_session.execute(_LOAD, {"coupon_ids": coupon_ids, "order_no": order_no}).all()
    prior = rows[0][2] if rows and order_no is not None else None
    if prior is not None:
        return [], str(prior)
    found = {c.id: (c, t) for c, t, _ in rows if c.member_id == member_id}
    missing = sorted(set(coupon_ids) - set(found))
    if missing:
        if order_no is not None and _has_redemption(db_session, order_no):
            return [], RedemptionState.REDEEMED.value
        raise not_held(member_id, missing)
    return [found[i] for i in sorted(found)], None


def not_held(member_id: int, coupon_ids: list[int]) -> LoyaltyError:
    return LoyaltyError(
        LoyaltyErrorCode.COUPON_NOT_FOUND,
        f"member {member_id} holds no coupon {', '.join(map(str, coupon_ids))}",
    )


def validate_coupons(
    db_session: Session,
    *,
    member_id: int,
    coupon_ids: list[int],
    cart: Cart,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    order_no: str | None = None,
) -> Validation:
    """Check that these coupons can be used together on this cart now; nothing is written."""
    _require_distinct(coupon_ids)
    pairs, _ = _load(db_session, member_id, coupon_ids)
    return validate_pairs(pairs, cart=cart, now=now, tz=tz, order_no=order_no)


def _require_distinct(coupon_ids: list[int]) -> None:
    if not coupon_ids or len(set(coupon_ids)) != len(coupon_ids):
        raise LoyaltyError(LoyaltyErrorCode.COUPON_NOT_USABLE, "give distinct coupon ids")


def validate_pairs(
    pairs: list[tuple[Coupon, CouponTemplate]],
    *,
    cart: Cart,
    now: datetime,
    tz: ZoneInfo,
    order_no: str | None,
) -> Validation:
    for coupon, _ in pairs:
        _require_free(coupon, now, order_no)
    quotes = [_quote(c, t, cart, now, tz) for c, t in pairs]
    for q in quotes:
        if not q.usable:
            raise LoyaltyError(
                LoyaltyErrorCode.COUPON_NOT_USABLE, f"coupon {q.coupon_id}: {q.reason}"
            )
    refusal = stacking_refusal([terms_of(t) for _, t in pairs])
    if refusal:
        raise LoyaltyError(LoyaltyErrorCode.NOT_STACKABLE, refusal)
    return Validation(coupons=quotes)


def _require_free(coupon: Coupon, now: datetime, order_no: str | None) -> None:
    if coupon.state == CouponState.ISSUED:
        return
    if coupon.state == CouponState.RESERVED:
        assert coupon.reservation_expires_at is not None
        if coupon.reservation_key == order_no or coupon.reservation_expires_at <= now:
            return
        raise LoyaltyError(
            LoyaltyErrorCode.COUPON_STATE_CONFLICT,
            f"coupon {coupon.id} is reserved for another order",
        )
    raise LoyaltyError(
        LoyaltyErrorCode.COUPON_STATE_CONFLICT, f"coupon {coupon.id} is {coupon.state}"
    )


def reserve_coupons(
    db_session: Session,
    *,
    member_id: int,
    coupon_ids: list[int],
    order_no: str,
    cart: Cart,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    ttl_seconds: int = DEFAULT_RESERVATION_SECONDS,
) -> Validation:
    """Hold the coupons for this order until the timeout; again with the same order extends it."""
    validation = validate_coupons(
        db_session,
        member_id=member_id,
        coupon_ids=coupon_ids,
        cart=cart,
        now=now,
        tz=tz,
        order_no=order_no,
    )
    release_coupons(db_session, order_no=order_no, now=now, keep=set(coupon_ids))
    c = _coupons.c
    mine = (c.state == CouponState.RESERVED) & (c.reservation_key == order_no)
    for coupon_id in sorted(coupon_ids):
        changed = db_session.execute(
            sa.update(_coupons)
            .where(c.id == coupon_id, c.member_id == member_id, c.valid_until > now)
            .where(_free(now) | mine)
            .values(
                state=CouponState.RESERVED,
                reservation_key=order_no,
                reservation_expires_at=now + timedelta(seconds=ttl_seconds),
                updated_at=now,
            )
        ).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            raise redeem_write.taken(coupon_id)
    return validation


def release_coupons(
    db_session: Session, *, order_no: str, now: datetime, keep: set[int] | None = None
) -> int:
    """Give back every coupon reserved for this order (all but `keep`); returns how many."""
    c = _coupons.c
    stmt = (
        sa.update(_coupons)
        .where(c.state == CouponState.RESERVED, c.reservation_key == order_no)
        .values(
            state=CouponState.ISSUED,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=now,
        )
    )
    if keep:
        stmt = stmt.where(c.id.not_in(keep))
    return int(db_session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def redeem_coupons(
    db_session: Session,
    *,
    member_id: int,
    order_no: str,
    cart: Cart,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    coupon_ids: list[int] | None = None,
) -> list[RedemptionRecord]:
    """Use the coupons on the order (those reserved for it when none are named); once per order.
    Hot path (coupons named): one read (coupons, templates and the replay check together) and,
    on PostgreSQL, one write statement per coupon (redeem_write.redeem)."""
    if coupon_ids is None:
        if _has_redemption(db_session, order_no):
            return redemptions_for_order(
                db_session, order_no=order_no, state=RedemptionState.REDEEMED
            )
        coupon_ids = _reserved_for(db_session, member_id, order_no, now)
    _require_distinct(coupon_ids)
    pairs, prior = _load(db_session, member_id, coupon_ids, order_no=order_no)
    if prior == RedemptionState.REDEEMED:
        return redemptions_for_order(db_session, order_no=order_no, state=RedemptionState.REDEEMED)
    if prior == RedemptionState.REVERSED:
        # Decided: a refunded order is closed; a new sale needs a new order number (the
        # UNIQUE(coupon_id, order_no) key must keep meaning "this coupon on this order").
        raise LoyaltyError(
            LoyaltyErrorCode.ORDER_REVERSED,
            f"order {order_no} was refunded; redeem under a new order number",
        )
    validation = validate_pairs(pairs, cart=cart, now=now, tz=tz, order_no=order_no)
    return [
        _mark_redeemed(db_session, q, member_id, order_no, cart, now) for q in validation.coupons
    ]


def _has_redemption(db_session: Session, order_no: str) -> bool:
    found = db_session.scalar(
        sa.select(CouponRedemption.id)
        .where(
            CouponRedemption.order_no == order_no,
            CouponRedemption.state == RedemptionState.REDEEMED,
        )
        .limit(1)
    )
    return found is not None


def _reserved_for(db_session: Session, member_id: int, order_no: str, now: datetime) -> list[int]:
    ids = list(
        db_session.scalars(
            sa.select(Coupon.id).where(
                Coupon.member_id == member_id,
                Coupon.state == CouponState.RESERVED,
                Coupon.reservation_key == order_no,
                Coupon.reservation_expires_at > now,
            )
        )
    )
    if not ids:
        raise LoyaltyError(
            LoyaltyErrorCode.RESERVATION_NOT_FOUND,
            f"no live reservation for order {order_no} (expired or released?)",
        )
    return ids


def _mark_redeemed(
    db_session: Session,
    q: CouponQuote,
    member_id: int,
    order_no: str,
    cart: Cart,
    now: datetime,
) -> RedemptionRecord:
    redemption_id = redeem_write.redeem(
        db_session, redemption_write(q, member_id, order_no, cart, now)
    )
    return redeemed_record(q, redemption_id, order_no, now)


def redemption_write(
    q: CouponQuote, member_id: int, order_no: str, cart: Cart, now: datetime
) -> redeem_write.RedemptionWrite:
    return redeem_write.RedemptionWrite(
        coupon_id=q.coupon_id,
        template_id=q.template_id,
        template_code=q.template_code,
        member_id=member_id,
        order_no=order_no,
        discount_fen=q.discount_fen,
        cart=cart,
        now=now,
    )


def redeemed_record(
    q: CouponQuote, redemption_id: int, order_no: str, now: datetime
) -> RedemptionRecord:
    return RedemptionRecord(
        redemption_id=redemption_id,
        coupon_id=q.coupon_id,
        template_code=q.template_code,
        order_no=order_no,
        state=RedemptionState.REDEEMED,
        discount_fen=q.discount_fen,
        redeemed_at=now,
        refund_no=None,
    )


def _event(
    db_session: Session, type: str, redemption: CouponRedemption, code: str, now: datetime
) -> None:
    properties: dict[str, Any] = {
        "coupon_id": redemption.coupon_id,
        "template_code": code,
        "order_no": redemption.order_no,
        "discount_fen": redemption.discount_fen,
    }
    if redemption.refund_no:
        properties["refund_no"] = redemption.refund_no
    row = coupon_event(
        type=type,
        event_id=f"{type}:{redemption.id}",
        member_id=redemption.member_id,
        now=now,
        properties=properties,
    )
    db_session.execute(sa.insert(Event), [row])


def reverse_redemptions(
    db_session: Session, *, order_no: str, refund_no: str, now: datetime
) -> list[RedemptionRecord]:
    """Give the order's coupons back after a refund (expired ones come back expired)."""
    already = [
        r for r in redemptions_for_order(db_session, order_no=order_no) if r.refund_no == refund_no
    ]
    if already:
        return already
    standing = list(
        db_session.scalars(
            sa.select(CouponRedemption)
            .where(CouponRedemption.order_no == order_no, CouponRedemption.active == 1)
            .order_by(CouponRedemption.coupon_id)
            .with_for_update()
        )
    )
    if not standing:
        raise LoyaltyError(
            LoyaltyErrorCode.REDEMPTION_NOT_FOUND, f"no standing redemption for order {order_no}"
        )
    for redemption in standing:
        _reverse_one(db_session, redemption, refund_no, now)
    return [
        r for r in redemptions_for_order(db_session, order_no=order_no) if r.refund_no == refund_no
    ]


def _reverse_one(
    db_session: Session, redemption: CouponRedemption, refund_no: str, now: datetime
) -> None:
    c = _coupons.c
    back = sa.case((c.valid_until > now, CouponState.ISSUED.value), else_=CouponState.EXPIRED.value)
    changed = db_session.execute(
        sa.update(_coupons)
        .where(c.id == redemption.coupon_id, c.state == CouponState.REDEEMED)
        .values(state=back, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise LoyaltyError(
            LoyaltyErrorCode.COUPON_STATE_CONFLICT,
            f"coupon {redemption.coupon_id} is not redeemed any more",
        )
    redemption.state = RedemptionState.REVERSED
    redemption.active = None
    redemption.reversed_at = now
    redemption.refund_no = refund_no
    db_session.flush()
    code = db_session.scalar(
        sa.select(CouponTemplate.code).where(CouponTemplate.id == redemption.template_id)
    )
    _event(db_session, "coupon_reversed", redemption, str(code), now)


def redemptions_for_order(
    db_session: Session, *, order_no: str, state: str | None = None
) -> list[RedemptionRecord]:
    stmt = (
        sa.select(CouponRedemption, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == CouponRedemption.template_id)
        .where(CouponRedemption.order_no == order_no)
        .order_by(CouponRedemption.id)
        .execution_options(populate_existing=True)
    )
    if state is not None:
        stmt = stmt.where(CouponRedemption.state == state)
    return [_record(r, code) for r, code in db_session.execute(stmt).all()]


def _record(r: CouponRedemption, code: str) -> RedemptionRecord:
    return RedemptionRecord(
        redemption_id=r.id,
        coupon_id=r.coupon_id,
        template_code=code,
        order_no=r.order_no,
        state=r.state,
        discount_fen=r.discount_fen,
        redeemed_at=r.redeemed_at,
        refund_no=r.refund_no,
    )
