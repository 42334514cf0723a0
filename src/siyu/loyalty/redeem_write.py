"""The write of coupon redemptions on PostgreSQL in one round trip, for one coupon or a batch.

One statement: a `batch` of rows (coupon, member, order, discount, instant, …) as VALUES; a
data-modifying CTE marks each coupon redeemed with the same conditional UPDATE as ADR 0001
(free, or reserved for this order, still valid, held by this member); the redemption rows are
inserted from the UPDATE's RETURNING, and the coupon_redeemed events from the redemptions'
ids. A coupon the UPDATE does not match gets no redemption and no event: the caller refuses
that request (`redeem_many` returns only the coupons it took). The UNIQUE/CHECK backstops of
the tables still apply. A batch names each coupon at most once (the caller's job).

SQLite (one writer, no network round trips) runs the same three writes as plain statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from siyu.db import UTCDateTime
from siyu.ingest.models import Event
from siyu.loyalty.coupons import Cart
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import coupon_event
from siyu.loyalty.models import Coupon, CouponRedemption, CouponState, RedemptionState

_coupons = cast(sa.Table, Coupon.__table__)
_redemptions = cast(sa.Table, CouponRedemption.__table__)
_events = cast(sa.Table, Event.__table__)


@dataclass(frozen=True)
class RedemptionWrite:
    """One coupon used on one order, already validated against the cart."""

    coupon_id: int
    template_id: int
    template_code: str
    member_id: int
    order_no: str
    discount_fen: int
    cart: Cart
    now: datetime

    @property
    def event_properties(self) -> dict[str, Any]:
        return {
            "coupon_id": self.coupon_id,
            "template_code": self.template_code,
            "order_no": self.order_no,
            "discount_fen": self.discount_fen,
        }


# The batch's columns and their types (the types' bind processors run on every value).
_BATCH_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("coupon_id", sa.BigInteger()),
    ("template_id", sa.BigInteger()),
    ("member_id", sa.BigInteger()),
    ("order_no", sa.String()),
    ("discount_fen", sa.Integer()),
    ("order_amount_fen", sa.Integer()),
    ("store_code", sa.String()),
    ("channel", sa.String()),
    ("now", UTCDateTime()),
    ("properties", sa.JSON()),  # an array of JSON values: json[]
)


_REDEMPTION_COLUMNS = ["coupon_id", "template_id", "member_id", "order_no", "state", "active"]
_REDEMPTION_COLUMNS += ["discount_fen", "order_amount_fen", "store_code", "channel", "redeemed_at"]
_EVENT_COLUMNS = ["event_id", "type", "occurred_at", "member_id", "identities", "properties"]
_EVENT_COLUMNS += ["received_at"]


def _statement() -> sa.Select[int, int]:
    """Built once per process, for any batch size: each batch column is one array parameter,
    so the SQL is compiled once and cached; executing it only binds values."""
    arrays = [
        sa.bindparam(f"batch_{name}", type_=postgresql.ARRAY(type_))
        for name, type_ in _BATCH_COLUMNS
    ]
    columns = [sa.column(name, type_) for name, type_ in _BATCH_COLUMNS]
    # The rows straight in the UPDATE's FROM (not a CTE): the planner sees a function scan and
    # probes the coupons' primary key; every later step reads the UPDATE's RETURNING.
    batch = sa.func.unnest(*arrays).table_valued(*columns).render_derived("batch")
    c, b = _coupons.c, batch.c
    free = (c.state == CouponState.ISSUED.value) | (
        (c.state == CouponState.RESERVED.value)
        & ((c.reservation_expires_at <= b.now) | (c.reservation_key == b.order_no))
    )
    marked = (
        sa.update(_coupons)
        .where(c.id == b.coupon_id, c.member_id == b.member_id, c.valid_until > b.now, free)
        .values(
            state=CouponState.REDEEMED.value,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=b.now,
        )
        .returning(c.id.label("coupon_id"), *[b[name] for name, _ in _BATCH_COLUMNS[1:]])
        .cte("marked")
    )
    m, r = marked.c, _redemptions.c
    inserted = (
        sa.insert(_redemptions)
        .from_select(
            _REDEMPTION_COLUMNS,
            sa.select(
                m.coupon_id,
                m.template_id,
                m.member_id,
                m.order_no,
                sa.literal(RedemptionState.REDEEMED.value),
                sa.literal(1),
                m.discount_fen,
                m.order_amount_fen,
                m.store_code,
                m.channel,
                m.now,
            ),
        )
        .returning(r.id, r.coupon_id)
        .cte("inserted")
    )
    announced = sa.insert(_events).from_select(
        _EVENT_COLUMNS,
        sa.select(
            sa.literal("coupon_redeemed:") + sa.cast(inserted.c.id, sa.String),
            sa.literal("coupon_redeemed"),
            m.now,
            m.member_id,
            sa.bindparam("batch_identities", type_=_events.c.identities.type),
            m.properties,
            m.now,
        ).join_from(inserted, marked, m.coupon_id == inserted.c.coupon_id),
    )
    return sa.select(inserted.c.coupon_id, inserted.c.id).add_cte(announced.cte("announced"))


_REDEEM_MANY = _statement()


def redeem_many(connection: sa.Connection, writes: list[RedemptionWrite]) -> dict[int, int]:
    """Redeem each coupon for its order in one statement; returns {coupon id: redemption id}
    for the coupons that were still free (the others were taken by a concurrent request).
    PostgreSQL only. One statement is atomic by itself, so on an autocommit connection it is
    its own transaction (RedemptionBatcher relies on this)."""
    if not writes:
        return {}
    columns: dict[str, list[Any]] = {
        "coupon_id": [w.coupon_id for w in writes],
        "template_id": [w.template_id for w in writes],
        "member_id": [w.member_id for w in writes],
        "order_no": [w.order_no for w in writes],
        "discount_fen": [w.discount_fen for w in writes],
        "order_amount_fen": [w.cart.total_fen for w in writes],
        "store_code": [w.cart.store_code for w in writes],
        "channel": [w.cart.channel for w in writes],
        "now": [w.now for w in writes],
        "properties": [w.event_properties for w in writes],
    }
    # Bind names are prefixed: an UPDATE treats execute() keys named like columns as SET values.
    params: dict[str, Any] = {f"batch_{name}": values for name, values in columns.items()}
    params["batch_identities"] = {}
    rows = connection.execute(_REDEEM_MANY, params).all()
    return {int(coupon_id): int(redemption_id) for coupon_id, redemption_id in rows}


def redeem(db_session: Session, write: RedemptionWrite) -> int:
    """Mark the coupon redeemed, record the redemption and its event; returns the redemption
    id. Refused (COUPON_STATE_CONFLICT) if the coupon is no longer free for this order."""
    if db_session.get_bind().dialect.name == "postgresql":
        redemption_id = redeem_many(db_session.connection(), [write]).get(write.coupon_id)
        if redemption_id is None:
            raise taken(write.coupon_id)
        return redemption_id
    return _redeem_in_three_statements(db_session, write)


def taken(coupon_id: int) -> LoyaltyError:
    """The refusal of a coupon a concurrent request took between the read and the write."""
    return LoyaltyError(
        LoyaltyErrorCode.COUPON_STATE_CONFLICT,
        f"coupon {coupon_id} was taken by a concurrent request",
    )


def _redeem_in_three_statements(db_session: Session, w: RedemptionWrite) -> int:
    c = _coupons.c
    free = (c.state == CouponState.ISSUED) | (
        (c.state == CouponState.RESERVED)
        & ((c.reservation_expires_at <= w.now) | (c.reservation_key == w.order_no))
    )
    changed = db_session.execute(
        sa.update(_coupons)
        .where(c.id == w.coupon_id, c.member_id == w.member_id, c.valid_until > w.now, free)
        .values(
            state=CouponState.REDEEMED,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=w.now,
        )
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        raise taken(w.coupon_id)
    values = {
        "coupon_id": w.coupon_id,
        "template_id": w.template_id,
        "member_id": w.member_id,
        "order_no": w.order_no,
        "state": RedemptionState.REDEEMED.value,
        "active": 1,
        "discount_fen": w.discount_fen,
        "order_amount_fen": w.cart.total_fen,
        "store_code": w.cart.store_code,
        "channel": w.cart.channel,
        "redeemed_at": w.now,
    }
    r = _redemptions
    redemption_id = int(
        db_session.execute(sa.insert(r).values(values).returning(r.c.id)).scalar_one()
    )
    event = coupon_event(
        type="coupon_redeemed",
        event_id=f"coupon_redeemed:{redemption_id}",
        member_id=w.member_id,
        now=w.now,
        properties=w.event_properties,
    )
    db_session.execute(sa.insert(_events), [event])
    return redemption_id
