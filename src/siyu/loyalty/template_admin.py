"""Pausing and resuming a coupon template (audited).

Decisions: a paused template issues nothing — claims, packs, journeys (an outcome of the step,
not a failure), bulk issuances (the running one stops at its next batch with
TEMPLATE_INACTIVE and resumes with the same key after `resume`) — because the budget UPDATE
restates `status = 'active'`. Coupons already issued stay usable: pausing an offer must not
break a customer's checkout. Pausing a paused template (or resuming an active one) changes
nothing and is not an error; an archived template cannot be resumed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.audit import service as audit_service
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import load_template
from siyu.loyalty.models import CouponTemplate, TemplateStatus

_FROM = {TemplateStatus.PAUSED: TemplateStatus.ACTIVE, TemplateStatus.ACTIVE: TemplateStatus.PAUSED}


def pause_template(db_session: Session, *, code: str, now: datetime, actor: str) -> str:
    """Stop issuing the template; returns its status."""
    return _move(db_session, code=code, to=TemplateStatus.PAUSED, now=now, actor=actor)


def resume_template(db_session: Session, *, code: str, now: datetime, actor: str) -> str:
    """Issue the template again; returns its status."""
    return _move(db_session, code=code, to=TemplateStatus.ACTIVE, now=now, actor=actor)


def _move(db_session: Session, *, code: str, to: TemplateStatus, now: datetime, actor: str) -> str:
    template = load_template(db_session, code)
    changed = db_session.execute(
        sa.update(CouponTemplate)
        .where(CouponTemplate.id == template.id, CouponTemplate.status == _FROM[to].value)
        .values(status=to.value, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    status = db_session.scalar(
        sa.select(CouponTemplate.status).where(CouponTemplate.id == template.id)
    )
    if changed != 1:
        if status == to:
            return str(status)
        raise LoyaltyError(
            LoyaltyErrorCode.TEMPLATE_INACTIVE, f"template {code} is {status}; cannot move to {to}"
        )
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=actor,
        action=f"coupon_template.{'pause' if to == TemplateStatus.PAUSED else 'resume'}",
        entity_type="coupon_template",
        entity_id=template.id,
        detail={"code": code, "status": str(to)},
    )
    return str(status)
