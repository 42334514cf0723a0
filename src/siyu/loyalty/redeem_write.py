"""The write of a coupon redemption on PostgreSQL in one round trip: a statement whose
data-modifying CTEs mark the coupon redeemed (the same conditional UPDATE as ADR 0001: free,
or reserved for this order, still valid, held by this member), insert the redemption row from
the UPDATE's RETURNING, and the coupon_redeemed event from the redemption's id. If the UPDATE
matches nothing, neither INSERT sees a row and the statement returns none: the caller refuses
the call and its transaction rolls back. The UNIQUE/CHECK backstops of the tables still apply.

SQLite (one writer, no network round trips) runs the same three writes as plain statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.ingest.models import Event
from siyu.loyalty.coupons import Cart
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import coupon_event
from siyu.loyalty.models import Coupon, CouponRedemption, CouponState, RedemptionState

_coupons = cast(sa.Table, Coupon.__table__)
_redemptions = cast(sa.Table, CouponRedemption.__table__)
_events = cast(sa.Table, Event.__table__)


def _param(table: sa.Table, column: str, name: str | None = None) -> sa.ColumnElement[object]:
    """A bound parameter typed like the column it goes to (UTC datetimes, JSON)."""
    return sa.bindparam(f"p_{name or column}", type_=table.c[column].type).label(column)


def _statement() -> sa.Select[int]:
    """Built once per process: executing it only binds values (no construction, cached SQL)."""
    c, r, e = _coupons.c, _redemptions, _events
    now = sa.bindparam("p_now", type_=c.updated_at.type)
    free = (c.state == CouponState.ISSUED.value) | (
        (c.state == CouponState.RESERVED.value)
        & ((c.reservation_expires_at <= now) | (c.reservation_key == sa.bindparam("p_order_no")))
    )
    marked = (
        sa.update(_coupons)
        .where(
            c.id == sa.bindparam("p_coupon_id"),
            c.member_id == sa.bindparam("p_member_id"),
            c.valid_until > now,
            free,
        )
        .values(
            state=CouponState.REDEEMED.value,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=now,
        )
        .returning(c.id)
        .cte("marked")
    )
    columns = ["template_id", "member_id", "order_no", "state", "active", "discount_fen"]
    columns += ["order_amount_fen", "store_code", "channel", "redeemed_at"]
    inserted = (
        sa.insert(r)
        .from_select(
            ["coupon_id", *columns],
            sa.select(
                marked.c.id,
                *[_param(r, name, "now" if name == "redeemed_at" else None) for name in columns],
            ),
        )
        .returning(r.c.id)
        .cte("inserted")
    )
    event_columns = ["type", "occurred_at", "member_id", "identities", "properties", "received_at"]
    announced = sa.insert(e).from_select(
        ["event_id", *event_columns],
        sa.select(
            (sa.literal("coupon_redeemed:") + sa.cast(inserted.c.id, sa.String)).label("event_id"),
            sa.literal("coupon_redeemed").label("type"),
            _param(e, "occurred_at", "now"),
            _param(e, "member_id"),
            _param(e, "identities"),
            _param(e, "properties"),
            _param(e, "received_at", "now"),
        ),
    )
    return sa.select(inserted.c.id).add_cte(announced.cte("announced"))


_REDEEM = _statement()


def redeem_in_one_statement(
    db_session: Session,
    *,
    coupon_id: int,
    template_id: int,
    template_code: str,
    member_id: int,
    order_no: str,
    discount_fen: int,
    cart: Cart,
    now: datetime,
) -> int:
    """Redeem one coupon for the order; returns the redemption id (refused: raises)."""
    params = {
        "p_coupon_id": coupon_id,
        "p_template_id": template_id,
        "p_member_id": member_id,
        "p_order_no": order_no,
        "p_state": RedemptionState.REDEEMED.value,
        "p_active": 1,
        "p_discount_fen": discount_fen,
        "p_order_amount_fen": cart.total_fen,
        "p_store_code": cart.store_code,
        "p_channel": cart.channel,
        "p_now": now,
        "p_identities": {},
        "p_properties": {
            "coupon_id": coupon_id,
            "template_code": template_code,
            "order_no": order_no,
            "discount_fen": discount_fen,
        },
    }
    # Bind names are prefixed: an UPDATE treats execute() keys named like columns as SET values.
    redemption_id = db_session.connection().execute(_REDEEM, params).scalar()
    if redemption_id is None:
        raise LoyaltyError(
            LoyaltyErrorCode.COUPON_STATE_CONFLICT,
            f"coupon {coupon_id} was taken by a concurrent request",
        )
    return int(redemption_id)


def redeem(
    db_session: Session,
    *,
    coupon_id: int,
    template_id: int,
    template_code: str,
    member_id: int,
    order_no: str,
    discount_fen: int,
    cart: Cart,
    now: datetime,
) -> int:
    """Mark the coupon redeemed, record the redemption and its event; returns the redemption
    id. Refused (COUPON_STATE_CONFLICT) if the coupon is no longer free for this order."""
    args: dict[str, Any] = {
        "coupon_id": coupon_id,
        "template_id": template_id,
        "template_code": template_code,
        "member_id": member_id,
        "order_no": order_no,
        "discount_fen": discount_fen,
        "cart": cart,
        "now": now,
    }
    if db_session.get_bind().dialect.name == "postgresql":
        return redeem_in_one_statement(db_session, **args)
    return _redeem_in_three_statements(db_session, **args)


def _redeem_in_three_statements(
    db_session: Session,
    *,
    coupon_id: int,
    template_id: int,
    template_code: str,
    member_id: int,
    order_no: str,
    discount_fen: int,
    cart: Cart,
    now: datetime,
) -> int:
    c = _coupons.c
    free = (c.state == CouponState.ISSUED) | (
        (c.state == CouponState.RESERVED)
        & ((c.reservation_expires_at <= now) | (c.reservation_key == order_no))
    )
    changed = db_session.execute(
        sa.update(_coupons)
        .where(c.id == coupon_id, c.member_id == member_id, c.valid_until > now, free)
        .values(
            state=CouponState.REDEEMED,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=now,
        )
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise LoyaltyError(
            LoyaltyErrorCode.COUPON_STATE_CONFLICT,
            f"coupon {coupon_id} was taken by a concurrent request",
        )
    r = _redemptions
    values = {
        "coupon_id": coupon_id,
        "template_id": template_id,
        "member_id": member_id,
        "order_no": order_no,
        "state": RedemptionState.REDEEMED.value,
        "active": 1,
        "discount_fen": discount_fen,
        "order_amount_fen": cart.total_fen,
        "store_code": cart.store_code,
        "channel": cart.channel,
        "redeemed_at": now,
    }
    redemption_id = int(
        db_session.execute(sa.insert(r).values(values).returning(r.c.id)).scalar_one()
    )
    event = coupon_event(
        type="coupon_redeemed",
        event_id=f"coupon_redeemed:{redemption_id}",
        member_id=member_id,
        now=now,
        properties={
            "coupon_id": coupon_id,
            "template_code": template_code,
            "order_no": order_no,
            "discount_fen": discount_fen,
        },
    )
    db_session.execute(sa.insert(_events), [event])
    return redemption_id
