"""Coupon use cases other parts call: templates, packs, issuing, the wallet, the redemption
protocol, housekeeping (reservation timeouts, expiry, expiry reminders), burn-down and ROI.

Functions taking `db_session` write in the caller's transaction and never commit (journeys
call `issue_coupon` inside a step); functions taking `session_factory` own their transactions.
Decisions where the issue is silent:
- `coupon_expiring` is emitted once per coupon, when it has ≤ 3 days left and is still unused.
- A coupon whose validity passed is marked `expired` by housekeeping; until then it is already
  unusable (every check compares `valid_until` with now).
- ROI compares paid GMV per member since the issuance between the members who got the coupon
  and the held-out members (orders from the operational store's order lines).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.audit import service as audit_service
from siyu.db import transaction
from siyu.ingest.models import Event
from siyu.loyalty.bulk_issuance import IssuanceReport, issue_to_members
from siyu.loyalty.coupons import TemplateSpec, parse_template_spec
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import SHANGHAI, IssuedCoupon, coupon_event, load_template
from siyu.loyalty.issuance import issue_coupon as _issue_coupon
from siyu.loyalty.models import (
    Coupon,
    CouponHoldout,
    CouponIssuance,
    CouponPack,
    CouponRedemption,
    CouponState,
    CouponTemplate,
    RedemptionState,
)
from siyu.loyalty.redemption import (
    CouponQuote,
    RedemptionRecord,
    Validation,
    redeem_coupons,
    release_coupons,
    reserve_coupons,
    reverse_redemptions,
    usable_coupons,
    validate_coupons,
)
from siyu.orders.models import OrderLine

EXPIRING_NOTICE = timedelta(days=3)
_coupons = cast(sa.Table, Coupon.__table__)

__all__ = [
    "CouponQuote",
    "IssuanceReport",
    "IssuedCoupon",
    "RedemptionRecord",
    "Validation",
    "create_template",
    "issue_coupon",
    "issue_pack",
    "issue_to_members",
    "redeem_coupons",
    "release_coupons",
    "reserve_coupons",
    "reverse_redemptions",
    "run_coupon_housekeeping",
    "usable_coupons",
    "validate_coupons",
]

issue_coupon = _issue_coupon


# --- templates and packs ------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateRead:
    code: str
    name: str
    kind: str
    status: str
    spec: dict[str, Any]
    budget_total: int | None
    budget_daily: int | None
    issued_count: int
    per_member_limit: int
    redeemed: int


def create_template(
    db_session: Session, *, spec: TemplateSpec | dict[str, Any], now: datetime, actor: str
) -> TemplateRead:
    """Create a coupon template from a validated spec; a template code is never reused."""
    spec = spec if isinstance(spec, TemplateSpec) else parse_template_spec(spec)
    if db_session.scalar(sa.select(CouponTemplate.id).where(CouponTemplate.code == spec.code)):
        raise LoyaltyError(
            LoyaltyErrorCode.TEMPLATE_EXISTS, f"template {spec.code!r} already exists"
        )
    fields = spec.model_dump(exclude={"validity", "scope"})
    template = CouponTemplate(
        **fields,
        validity_kind=spec.validity,
        scope={k: list(v) for k, v in spec.scope.items()},
        issued_count=0,
        created_at=now,
        updated_at=now,
    )
    db_session.add(template)
    db_session.flush()
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=actor,
        action="coupon_template.create",
        entity_type="coupon_template",
        entity_id=template.id,
        detail={"code": spec.code, "kind": spec.kind.value},
    )
    return _template_read(db_session, template)


def _template_read(db_session: Session, template: CouponTemplate) -> TemplateRead:
    redeemed = db_session.scalar(
        sa.select(sa.func.count()).where(
            CouponRedemption.template_id == template.id,
            CouponRedemption.state == RedemptionState.REDEEMED,
        )
    )
    spec = {
        c.name: getattr(template, c.name)
        for c in CouponTemplate.__table__.columns
        if c.name not in ("id", "issued_count", "created_at", "updated_at")
    }
    return TemplateRead(
        code=template.code,
        name=template.name,
        kind=template.kind,
        status=template.status,
        spec=spec,
        budget_total=template.budget_total,
        budget_daily=template.budget_daily,
        issued_count=template.issued_count,
        per_member_limit=template.per_member_limit,
        redeemed=int(redeemed or 0),
    )


def get_template(db_session: Session, *, code: str) -> TemplateRead:
    return _template_read(db_session, load_template(db_session, code))


def list_templates(db_session: Session) -> list[TemplateRead]:
    templates = db_session.scalars(sa.select(CouponTemplate).order_by(CouponTemplate.id))
    return [_template_read(db_session, t) for t in templates]


def create_pack(
    db_session: Session,
    *,
    code: str,
    name: str,
    template_codes: list[str],
    now: datetime,
    for_new_members: bool = True,
) -> None:
    """A bundle of templates issued together, e.g. the new-member pack (新人礼包)."""
    for template_code in template_codes:
        load_template(db_session, template_code)
    db_session.add(
        CouponPack(
            code=code,
            name=name,
            items=[{"template_code": t} for t in template_codes],
            for_new_members=for_new_members,
            created_at=now,
        )
    )
    db_session.flush()


def issue_pack(
    db_session: Session,
    *,
    pack_code: str,
    member_id: int,
    idempotency_key: str,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
) -> list[IssuedCoupon]:
    """Issue every template of the pack to the member, all or nothing, once per key."""
    pack = db_session.scalar(sa.select(CouponPack).where(CouponPack.code == pack_code))
    if pack is None:
        raise LoyaltyError(LoyaltyErrorCode.PACK_NOT_FOUND, f"no coupon pack {pack_code!r}")
    return [
        _issue_coupon(
            db_session,
            template_code=str(item["template_code"]),
            member_id=member_id,
            idempotency_key=f"pack:{pack_code}:{idempotency_key}",
            now=now,
            tz=tz,
            source="pack",
        )
        for item in pack.items
    ]


# --- wallet -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletCoupon:
    coupon_id: int
    template_code: str
    name: str
    kind: str
    state: str
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    source: str


def member_wallet(
    db_session: Session, *, member_id: int, now: datetime, include_used: bool = True
) -> list[WalletCoupon]:
    """The member's coupons, usable first then by expiry; a lapsed one shows as expired."""
    stmt = (
        sa.select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.valid_until, Coupon.id)
    )
    if not include_used:
        stmt = stmt.where(Coupon.state.in_([CouponState.ISSUED, CouponState.RESERVED]))
    wallet = [_wallet_coupon(c, t, now) for c, t in db_session.execute(stmt).all()]
    return sorted(wallet, key=lambda w: w.state not in (CouponState.ISSUED, CouponState.RESERVED))


def _wallet_coupon(coupon: Coupon, template: CouponTemplate, now: datetime) -> WalletCoupon:
    lapsed = coupon.state == CouponState.ISSUED and coupon.valid_until <= now
    return WalletCoupon(
        coupon_id=coupon.id,
        template_code=template.code,
        name=template.name,
        kind=template.kind,
        state=CouponState.EXPIRED if lapsed else coupon.state,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        issued_at=coupon.issued_at,
        source=coupon.source,
    )


def as_dict(item: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready values (datetimes as ISO 8601)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(item).items()}


# --- housekeeping (worker hook) -----------------------------------------------------------------


def run_coupon_housekeeping(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """Worker hook: end timed-out reservations, expire lapsed coupons, remind before expiry."""
    with transaction(session_factory) as db_session:
        released = expire_reservations(db_session, now=now)
        expired = expire_coupons(db_session, now=now)
        reminded = announce_expiring(db_session, now=now)
    return released + expired + reminded


def expire_reservations(db_session: Session, *, now: datetime) -> int:
    c = _coupons.c
    result = db_session.execute(
        sa.update(_coupons)
        .where(c.state == CouponState.RESERVED, c.reservation_expires_at <= now)
        .values(
            state=CouponState.ISSUED,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def expire_coupons(db_session: Session, *, now: datetime) -> int:
    c = _coupons.c
    result = db_session.execute(
        sa.update(_coupons)
        .where(c.state.in_([CouponState.ISSUED, CouponState.RESERVED]), c.valid_until <= now)
        .values(
            state=CouponState.EXPIRED,
            reservation_key=None,
            reservation_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def announce_expiring(db_session: Session, *, now: datetime, limit: int = 10000) -> int:
    """One `coupon_expiring` event per unused coupon entering its last 3 days."""
    c = _coupons.c
    rows = db_session.execute(
        sa.select(c.id, c.member_id, c.valid_until, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == c.template_id)
        .where(
            c.state == CouponState.ISSUED,
            c.expiring_notified_at.is_(None),
            c.valid_until > now,
            c.valid_until <= now + EXPIRING_NOTICE,
        )
        .order_by(c.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    events = [
        coupon_event(
            type="coupon_expiring",
            event_id=f"coupon_expiring:{coupon_id}",
            member_id=member_id,
            now=now,
            properties={
                "coupon_id": coupon_id,
                "template_code": code,
                "valid_until": valid_until.isoformat(),
            },
        )
        for coupon_id, member_id, valid_until, code in rows
    ]
    db_session.execute(sa.insert(Event), events)
    db_session.execute(
        sa.update(_coupons).where(c.id.in_([r[0] for r in rows])).values(expiring_notified_at=now)
    )
    return len(rows)


# --- reporting ----------------------------------------------------------------------------------


def redemption_log(
    db_session: Session, *, template_code: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    r = CouponRedemption
    stmt = (
        sa.select(r, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == r.template_id)
        .order_by(r.redeemed_at.desc(), r.id.desc())
        .limit(limit)
    )
    if template_code:
        stmt = stmt.where(CouponTemplate.code == template_code)
    return [
        {
            "redemption_id": row.id,
            "coupon_id": row.coupon_id,
            "template_code": code,
            "member_id": row.member_id,
            "order_no": row.order_no,
            "state": row.state,
            "discount_fen": row.discount_fen,
            "order_amount_fen": row.order_amount_fen,
            "store_code": row.store_code,
            "redeemed_at": row.redeemed_at,
            "refund_no": row.refund_no,
        }
        for row, code in db_session.execute(stmt).all()
    ]


def budget_burndown(
    db_session: Session, *, template_code: str, tz: ZoneInfo = SHANGHAI
) -> list[dict[str, Any]]:
    """Per business day: coupons issued and redeemed, and the budget left after that day."""
    template = load_template(db_session, template_code)
    issued = _per_day(db_session, Coupon.issued_at, Coupon.template_id == template.id, tz)
    redeemed = _per_day(
        db_session,
        CouponRedemption.redeemed_at,
        (CouponRedemption.template_id == template.id)
        & (CouponRedemption.state == RedemptionState.REDEEMED),
        tz,
    )
    days = sorted(set(issued) | set(redeemed))
    left = template.budget_total
    out = []
    for day in days:
        if left is not None:
            left -= issued.get(day, 0)
        out.append(
            {
                "day": day,
                "issued": issued.get(day, 0),
                "redeemed": redeemed.get(day, 0),
                "left": left,
            }
        )
    return out


def _per_day(
    db_session: Session, column: Any, where: sa.ColumnElement[bool], tz: ZoneInfo
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (at,) in db_session.execute(sa.select(column).where(where)).yield_per(10000):
        day = at.astimezone(tz).date().isoformat()
        counts[day] = counts.get(day, 0) + 1
    return counts


def issuance_roi(db_session: Session, *, issuance_key: str) -> dict[str, Any]:
    """GMV of redeeming orders, and paid GMV per member since the issuance: treated vs holdout."""
    issuance = db_session.scalar(
        sa.select(CouponIssuance).where(CouponIssuance.key == issuance_key)
    )
    if issuance is None:
        raise LoyaltyError(
            LoyaltyErrorCode.ISSUANCE_NOT_FOUND, f"no issuance with key {issuance_key!r}"
        )
    treated = sa.select(Coupon.member_id).where(Coupon.issuance_id == issuance.id)
    held = sa.select(CouponHoldout.member_id).where(CouponHoldout.issuance_id == issuance.id)
    redeeming = db_session.execute(
        sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(CouponRedemption.order_amount_fen), 0)
        )
        .join(Coupon, Coupon.id == CouponRedemption.coupon_id)
        .where(
            Coupon.issuance_id == issuance.id, CouponRedemption.state == RedemptionState.REDEEMED
        )
    ).one()
    groups = {
        name: _gmv_per_member(db_session, members, issuance.created_at)
        for name, members in (("treated", treated), ("holdout", held))
    }
    uplift = None
    if groups["holdout"]["members"] and groups["treated"]["members"]:
        uplift = groups["treated"]["gmv_per_member"] - groups["holdout"]["gmv_per_member"]
    return {
        "issuance": issuance_key,
        "redemptions": int(redeeming[0]),
        "redeeming_gmv_fen": int(redeeming[1]),
        "groups": groups,
        "gmv_per_member_uplift_fen": uplift,
    }


def _gmv_per_member(db_session: Session, members: Any, since: datetime) -> dict[str, Any]:
    size = int(db_session.scalar(sa.select(sa.func.count()).select_from(members.subquery())) or 0)
    gmv = db_session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(OrderLine.amount), 0)).where(
            OrderLine.member_id.in_(members),
            OrderLine.paid_at >= since,
            OrderLine.status == "paid",
        )
    )
    gmv_fen = round(float(gmv or 0) * 100)
    return {
        "members": size,
        "gmv_fen": gmv_fen,
        "gmv_per_member": round(gmv_fen / size, 2) if size else 0.0,
    }


@dataclass(frozen=True)
class IssuanceRead:
    key: str
    template_code: str
    source: str
    status: str
    targeted: int
    issued: int
    skipped: int
    held_out: int
    holdout_percent: int
    created_at: datetime
    finished_at: datetime | None


def list_issuances(db_session: Session, *, template_code: str | None = None) -> list[IssuanceRead]:
    stmt = (
        sa.select(CouponIssuance, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == CouponIssuance.template_id)
        .order_by(CouponIssuance.id.desc())
    )
    if template_code:
        stmt = stmt.where(CouponTemplate.code == template_code)
    return [_issuance_read(i, code) for i, code in db_session.execute(stmt).all()]


def get_issuance(db_session: Session, *, key: str) -> IssuanceRead | None:
    row = db_session.execute(
        sa.select(CouponIssuance, CouponTemplate.code)
        .join(CouponTemplate, CouponTemplate.id == CouponIssuance.template_id)
        .where(CouponIssuance.key == key)
    ).first()
    return None if row is None else _issuance_read(row[0], row[1])


def _issuance_read(issuance: CouponIssuance, code: str) -> IssuanceRead:
    return IssuanceRead(
        key=issuance.key,
        template_code=code,
        source=issuance.source,
        status=issuance.status,
        targeted=issuance.targeted,
        issued=issuance.issued,
        skipped=issuance.skipped,
        held_out=issuance.held_out,
        holdout_percent=issuance.holdout_percent,
        created_at=issuance.created_at,
        finished_at=issuance.finished_at,
    )


def segment_member_ids(
    *,
    session_factory: sessionmaker[Session],
    warehouse: Any,
    segment: str,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
) -> list[int]:
    """Members of a saved segment now, after bringing the warehouse up to date."""
    from siyu.segments import service as segments_service
    from siyu.warehouse.sync import sync_all

    sync_all(session_factory=session_factory, warehouse=warehouse, tz=tz)
    with transaction(session_factory) as db_session:
        ids = segments_service.evaluate_member_ids(
            warehouse=warehouse,
            definition={"segment": segment},
            now=now,
            session=db_session,
            timezone=tz,
        )
    return sorted(ids)
