"""Issuing coupons: one claim (API, journey, pack) or a bulk issuance to a list of members.

Race safety (ADR 0001): the total and daily budgets are taken with conditional UPDATEs
(`issued_count = issued_count + n WHERE issued_count + n <= budget_total`), the per-member
limit is a slot number under UNIQUE(template, member, slot), and the caller's idempotency key
is UNIQUE(template, member, issue_key). The template row is always updated before coupon rows
are inserted, so concurrent claims on one template queue on that row in the same order and
cannot deadlock. A refused claim rolls back to a savepoint: it leaves no budget consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.db import insert_ignoring_duplicates
from siyu.identity.models import Member
from siyu.ingest.models import Event
from siyu.loyalty.coupons import validity_window
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import (
    Coupon,
    CouponDailyBudget,
    CouponState,
    CouponTemplate,
    TemplateStatus,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _table(model: type[Any]) -> sa.Table:
    return cast(sa.Table, model.__table__)


BULK_BATCH = 5000


@dataclass(frozen=True)
class IssuedCoupon:
    coupon_id: int
    template_code: str
    member_id: int
    valid_from: datetime
    valid_until: datetime
    created: bool  # False when the idempotency key had already issued it


def load_template(db_session: Session, code: str) -> CouponTemplate:
    template = db_session.scalar(sa.select(CouponTemplate).where(CouponTemplate.code == code))
    if template is None:
        raise LoyaltyError(LoyaltyErrorCode.TEMPLATE_NOT_FOUND, f"no coupon template {code!r}")
    return template


def _issuable_template(db_session: Session, code: str, now: datetime) -> CouponTemplate:
    template = load_template(db_session, code)
    if template.status != TemplateStatus.ACTIVE:
        raise LoyaltyError(
            LoyaltyErrorCode.TEMPLATE_INACTIVE, f"template {code} is {template.status}"
        )
    if template.valid_until is not None and template.valid_until <= now:
        raise LoyaltyError(LoyaltyErrorCode.TEMPLATE_INACTIVE, f"template {code} has ended")
    return template


def coupon_event(
    *, type: str, event_id: str, member_id: int, now: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    """An `events` row for journeys and reports; the id is deterministic, so replays dedupe."""
    return {
        "event_id": event_id,
        "type": type,
        "occurred_at": now,
        "member_id": member_id,
        "identities": {},
        "properties": properties,
        "received_at": now,
    }


def take_budget(db_session: Session, template: CouponTemplate, *, count: int, day: date) -> int:
    """Take up to `count` coupons from the total and daily budgets; returns how many it got."""
    granted = _take_total(db_session, template, count)
    if granted and template.budget_daily is not None:
        daily = _take_daily(db_session, template, granted, day)
        if daily < granted:
            _give_back_total(db_session, template.id, granted - daily)
        granted = daily
    return granted


def _take_total(db_session: Session, template: CouponTemplate, count: int) -> int:
    t = _table(CouponTemplate)
    while count > 0:
        cond = t.c.budget_total.is_(None) | (t.c.issued_count + count <= t.c.budget_total)
        # The status is restated here too, so a pause committed after the caller read the
        # template still stops this issue (and every later batch of a bulk issuance).
        result = db_session.execute(
            sa.update(t)
            .where(t.c.id == template.id, t.c.status == TemplateStatus.ACTIVE.value, cond)
            .values(issued_count=t.c.issued_count + count)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return count
        # Paused, or not enough left for all: retry with exactly what remains.
        status, left = db_session.execute(
            sa.select(t.c.status, t.c.budget_total - t.c.issued_count).where(t.c.id == template.id)
        ).one()
        if status != TemplateStatus.ACTIVE:
            raise LoyaltyError(
                LoyaltyErrorCode.TEMPLATE_INACTIVE, f"template {template.code} is {status}"
            )
        count = min(count - 1, int(left or 0))
    return 0


def _take_daily(db_session: Session, template: CouponTemplate, count: int, day: date) -> int:
    d = _table(CouponDailyBudget)
    insert_ignoring_duplicates(db_session, d, [{"template_id": template.id, "day": day}])
    limit = int(template.budget_daily or 0)
    key = (d.c.template_id == template.id) & (d.c.day == day)
    while count > 0:
        result = db_session.execute(
            sa.update(d).where(key, d.c.issued + count <= limit).values(issued=d.c.issued + count)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return count
        left = db_session.scalar(sa.select(limit - d.c.issued).where(key))
        count = min(count - 1, int(left or 0))
    return 0


def _give_back_total(db_session: Session, template_id: int, count: int) -> None:
    t = _table(CouponTemplate)
    db_session.execute(
        sa.update(t).where(t.c.id == template_id).values(issued_count=t.c.issued_count - count)
    )


def give_back_budget(
    db_session: Session, template: CouponTemplate, *, count: int, day: date
) -> None:
    """Return budget taken for coupons that were not inserted after all."""
    if count <= 0:
        return
    _give_back_total(db_session, template.id, count)
    if template.budget_daily is not None:
        d = _table(CouponDailyBudget)
        db_session.execute(
            sa.update(d)
            .where(d.c.template_id == template.id, d.c.day == day)
            .values(issued=d.c.issued - count)
        )


def _existing_by_key(
    db_session: Session, template_id: int, member_id: int, key: str
) -> Coupon | None:
    return db_session.scalar(
        sa.select(Coupon).where(
            Coupon.template_id == template_id,
            Coupon.member_id == member_id,
            Coupon.issue_key == key,
        )
    )


def _next_slot(db_session: Session, template_id: int, member_id: int) -> int:
    taken = db_session.scalar(
        sa.select(sa.func.max(Coupon.slot)).where(
            Coupon.template_id == template_id, Coupon.member_id == member_id
        )
    )
    return int(taken or 0) + 1


def issue_coupon(
    db_session: Session,
    *,
    template_code: str,
    member_id: int,
    idempotency_key: str,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    source: str = "api",
) -> IssuedCoupon:
    """Give the member one coupon of the template, once per idempotency key, within limits."""
    template = _issuable_template(db_session, template_code, now)
    existing = _existing_by_key(db_session, template.id, member_id, idempotency_key)
    if existing is not None:
        return _issued(existing, template_code, created=False)
    if db_session.get(Member, member_id) is None:
        raise LoyaltyError(LoyaltyErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    for _ in range(template.per_member_limit):
        slot = _next_slot(db_session, template.id, member_id)
        if slot > template.per_member_limit:
            break
        try:
            with db_session.begin_nested():
                coupon = _claim_slot(
                    db_session, template, member_id, slot, idempotency_key, now, tz, source
                )
            return _issued(coupon, template_code, created=True)
        except IntegrityError:
            # A concurrent claim took this slot or this key first: re-read and decide again.
            existing = _existing_by_key(db_session, template.id, member_id, idempotency_key)
            if existing is not None:
                return _issued(existing, template_code, created=False)
    raise LoyaltyError(
        LoyaltyErrorCode.MEMBER_LIMIT_REACHED,
        f"member {member_id} already holds {template.per_member_limit} of {template_code}",
    )


def _claim_slot(
    db_session: Session,
    template: CouponTemplate,
    member_id: int,
    slot: int,
    key: str,
    now: datetime,
    tz: ZoneInfo,
    source: str,
) -> Coupon:
    if take_budget(db_session, template, count=1, day=now.astimezone(tz).date()) != 1:
        raise LoyaltyError(*_budget_refusal(db_session, template))
    valid_from, valid_until = _window(template, now)
    coupon = Coupon(
        template_id=template.id,
        member_id=member_id,
        slot=slot,
        issue_key=key,
        source=source,
        state=CouponState.ISSUED,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_at=now,
        updated_at=now,
    )
    db_session.add(coupon)
    db_session.flush()
    db_session.execute(sa.insert(Event), [_issued_event(template, member_id, slot, now, coupon.id)])
    return coupon


def _budget_refusal(db_session: Session, template: CouponTemplate) -> tuple[LoyaltyErrorCode, str]:
    db_session.refresh(template)
    if template.budget_total is not None and template.issued_count >= template.budget_total:
        return (
            LoyaltyErrorCode.BUDGET_EXHAUSTED,
            f"{template.code}: all {template.budget_total} coupons are issued",
        )
    return (
        LoyaltyErrorCode.DAILY_BUDGET_EXHAUSTED,
        f"{template.code}: today's {template.budget_daily} coupons are issued",
    )


def _window(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    return validity_window(
        validity=template.validity_kind,
        now=now,
        valid_from=template.valid_from,
        valid_until=template.valid_until,
        valid_days=template.valid_days,
        start_after_days=template.start_after_days,
    )


def _issued_event(
    template: CouponTemplate, member_id: int, slot: int, now: datetime, coupon_id: int | None
) -> dict[str, Any]:
    return coupon_event(
        type="coupon_issued",
        event_id=f"coupon_issued:{template.code}:{member_id}:{slot}",
        member_id=member_id,
        now=now,
        properties={"template_code": template.code, "coupon_id": coupon_id, "kind": template.kind},
    )


def _issued(coupon: Coupon, template_code: str, *, created: bool) -> IssuedCoupon:
    return IssuedCoupon(
        coupon_id=coupon.id,
        template_code=template_code,
        member_id=coupon.member_id,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        created=created,
    )


def void_unused(
    db_session: Session,
    *,
    template_code: str,
    member_id: int,
    idempotency_key: str,
    now: datetime,
    reason: str,
) -> str | None:
    """Void the coupon issued under this key if it is still unused (a reward taken back);
    returns the coupon's state afterwards (None if none was issued). A reserved or redeemed
    coupon is left alone: the member may be at the till with it, or has used it."""
    c = _table(Coupon)
    template_id = sa.select(CouponTemplate.id).where(CouponTemplate.code == template_code)
    mine = (
        (c.c.template_id == template_id.scalar_subquery())
        & (c.c.member_id == member_id)
        & (c.c.issue_key == idempotency_key)
    )
    voided = db_session.execute(
        sa.update(c)
        .where(mine, c.c.state == CouponState.ISSUED.value)
        .values(state=CouponState.VOIDED.value, updated_at=now)
        .returning(c.c.id)
    ).scalar_one_or_none()
    if voided is not None:
        event = coupon_event(
            type="coupon_voided",
            event_id=f"coupon_voided:{voided}",
            member_id=member_id,
            now=now,
            properties={"coupon_id": voided, "template_code": template_code, "reason": reason},
        )
        db_session.execute(sa.insert(_table(Event)), [event])
        return CouponState.VOIDED.value
    state = db_session.scalar(sa.select(c.c.state).where(mine))
    return None if state is None else str(state)
