"""Issuing coupons: one claim (API, journey, pack) or a bulk issuance to a list of members.

Race safety (ADR 0001): the total and daily budgets are taken with conditional UPDATEs
(`issued_count = issued_count + n WHERE issued_count + n <= budget_total`), the per-member
limit is a slot number under UNIQUE(template, member, slot), and the caller's idempotency key
is UNIQUE(template, member, issue_key). The template row is always updated before coupon rows
are inserted, so concurrent claims on one template queue on that row in the same order and
cannot deadlock. A refused claim rolls back to a savepoint: it leaves no budget consumed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.identity.models import Member
from siyu.ingest.models import Event
from siyu.loyalty.coupons import validity_window
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import (
    Coupon,
    CouponDailyBudget,
    CouponHoldout,
    CouponIssuance,
    CouponState,
    CouponTemplate,
    IssuanceStatus,
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
        result = db_session.execute(
            sa.update(t)
            .where(t.c.id == template.id, cond)
            .values(issued_count=t.c.issued_count + count)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return count
        # Not enough left for all: retry with exactly what remains (read under the same rules).
        left = db_session.scalar(
            sa.select(t.c.budget_total - t.c.issued_count).where(t.c.id == template.id)
        )
        count = min(count - 1, int(left or 0))
    return 0


def _take_daily(db_session: Session, template: CouponTemplate, count: int, day: date) -> int:
    d = _table(CouponDailyBudget)
    _insert_ignoring_duplicates(db_session, d, [{"template_id": template.id, "day": day}])
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


def _insert_ignoring_duplicates(
    db_session: Session, table: sa.Table, rows: Sequence[dict[str, Any]], returning: Any = None
) -> list[Any]:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns the inserted rows."""
    if not rows:
        return []
    dialect = postgresql if db_session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing()
    if returning is None:
        db_session.execute(stmt, list(rows))
        return []
    return list(db_session.execute(stmt.returning(returning), list(rows)).scalars())


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


# --- bulk issuance ------------------------------------------------------------------------------


@dataclass
class IssuanceReport:
    issuance_id: int
    key: str
    targeted: int = 0
    issued: int = 0
    skipped: int = 0  # already issued under this key, over the member limit, or unknown member
    held_out: int = 0
    budget_exhausted: bool = False


ProgressCallback = Callable[[IssuanceReport], None]


def _batches(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    iterator = iter(ids)
    while chunk := list(islice(iterator, size)):
        yield chunk


def in_holdout(key: str, member_id: int, percent: int) -> bool:
    """Deterministic holdout: the same issuance key always holds out the same members."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{key}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def issue_to_members(
    session_factory: sessionmaker[Session],
    *,
    template_code: str,
    member_ids: Iterable[int],
    key: str,
    now: datetime,
    tz: ZoneInfo = SHANGHAI,
    source: str = "segment",
    holdout_percent: int = 0,
    batch_size: int = BULK_BATCH,
    progress: ProgressCallback | None = None,
) -> IssuanceReport:
    """Issue one coupon per member in batches, one transaction each; rerun with the same key
    to resume after a crash (members already served are skipped, never issued twice)."""
    report = _start_issuance(session_factory, template_code, key, now, source, holdout_percent)
    for chunk in _batches(member_ids, batch_size):
        with transaction(session_factory) as db_session:
            _issue_batch(db_session, report, template_code, chunk, now, tz, holdout_percent)
        if progress is not None:
            progress(report)
    with transaction(session_factory) as db_session:
        db_session.execute(
            sa.update(CouponIssuance)
            .where(CouponIssuance.id == report.issuance_id)
            .values(status=IssuanceStatus.FINISHED, finished_at=now)
        )
    return report


def _start_issuance(
    session_factory: sessionmaker[Session],
    template_code: str,
    key: str,
    now: datetime,
    source: str,
    holdout_percent: int,
) -> IssuanceReport:
    with transaction(session_factory) as db_session:
        template = _issuable_template(db_session, template_code, now)
        issuance = db_session.scalar(sa.select(CouponIssuance).where(CouponIssuance.key == key))
        if issuance is None:
            issuance = CouponIssuance(
                key=key,
                template_id=template.id,
                source=source,
                holdout_percent=holdout_percent,
                created_at=now,
            )
            db_session.add(issuance)
            db_session.flush()
        elif issuance.template_id != template.id:
            raise LoyaltyError(
                LoyaltyErrorCode.IDEMPOTENCY_CONFLICT,
                f"issuance key {key!r} was used for another template",
            )
        return IssuanceReport(issuance_id=issuance.id, key=key)


def _issue_batch(
    db_session: Session,
    report: IssuanceReport,
    template_code: str,
    chunk: list[int],
    now: datetime,
    tz: ZoneInfo,
    holdout_percent: int,
) -> None:
    template = load_template(db_session, template_code)
    known = set(
        db_session.scalars(sa.select(Member.id).where(_among(db_session, Member.id, chunk)))
    )
    held = [m for m in chunk if m in known and in_holdout(report.key, m, holdout_percent)]
    _insert_ignoring_duplicates(
        db_session,
        _table(CouponHoldout),
        [{"issuance_id": report.issuance_id, "member_id": m} for m in held],
    )
    slots = _slots_for(db_session, template, report.key, [m for m in known if m not in held])
    day = now.astimezone(tz).date()
    granted = take_budget(db_session, template, count=len(slots), day=day)
    pairs = sorted(slots.items())[:granted]
    inserted = _bulk_insert_coupons(db_session, template, report, pairs, now)
    give_back_budget(db_session, template, count=granted - len(inserted), day=day)
    _bulk_insert_events(db_session, template, inserted, now)
    batch = IssuanceReport(
        issuance_id=report.issuance_id,
        key=report.key,
        targeted=len(chunk),
        issued=len(inserted),
        skipped=len(chunk) - len(inserted) - len(held),
        held_out=len(held),
        budget_exhausted=granted < len(slots),
    )
    _add_counts(db_session, report, batch)


def _add_counts(db_session: Session, report: IssuanceReport, batch: IssuanceReport) -> None:
    """Counts on the issuance row accumulate over reruns; the report counts this run."""
    report.targeted += batch.targeted
    report.issued += batch.issued
    report.skipped += batch.skipped
    report.held_out += batch.held_out
    report.budget_exhausted = report.budget_exhausted or batch.budget_exhausted
    i = _table(CouponIssuance)
    db_session.execute(
        sa.update(i)
        .where(i.c.id == report.issuance_id)
        .values(
            targeted=i.c.targeted + batch.targeted,
            issued=i.c.issued + batch.issued,
            skipped=i.c.skipped + batch.skipped,
            held_out=i.c.held_out + batch.held_out,
        )
    )


def _slots_for(
    db_session: Session, template: CouponTemplate, key: str, member_ids: list[int]
) -> dict[int, int]:
    """The slot each member would take; members over the limit or already served are left out."""
    if not member_ids:
        return {}
    c = _table(Coupon)
    rows = db_session.execute(
        sa.select(
            c.c.member_id,
            sa.func.max(c.c.slot),
            sa.func.max(sa.case((c.c.issue_key == key, 1), else_=0)),
        )
        .where(c.c.template_id == template.id, _among(db_session, c.c.member_id, member_ids))
        .group_by(c.c.member_id)
    ).all()
    taken = {int(m): (int(slot), bool(served)) for m, slot, served in rows}
    slots: dict[int, int] = {}
    for member_id in member_ids:
        last, served = taken.get(member_id, (0, False))
        if not served and last < template.per_member_limit:
            slots[member_id] = last + 1
    return slots


def _among(db_session: Session, column: Any, ids: list[int]) -> sa.ColumnElement[bool]:
    """`column IN ids`; one array parameter on PostgreSQL (thousands of placeholders are slow)."""
    if _is_postgres(db_session):
        return cast(
            sa.ColumnElement[bool],
            column == sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.BigInteger))),
        )
    return cast(sa.ColumnElement[bool], column.in_(ids))


def _is_postgres(db_session: Session) -> bool:
    return db_session.get_bind().dialect.name == "postgresql"


_PG_COUPONS = sa.text(
    "INSERT INTO coupons (template_id, member_id, slot, issue_key, source, issuance_id, state,"
    " valid_from, valid_until, issued_at, updated_at)"
    " SELECT :template_id, m, s, :key, 'issuance', :issuance_id, 'issued', :valid_from,"
    " :valid_until, :now, :now FROM unnest(CAST(:members AS BIGINT[]), CAST(:slots AS INT[]))"
    " AS x(m, s) ON CONFLICT DO NOTHING RETURNING id, member_id, slot"
)
_PG_EVENTS = sa.text(
    "INSERT INTO events (event_id, type, occurred_at, member_id, identities, properties,"
    " received_at) SELECT 'coupon_issued:' || :code || ':' || m || ':' || s, 'coupon_issued',"
    " :now, m, CAST('{}' AS JSON), json_build_object('template_code', CAST(:code AS TEXT),"
    " 'coupon_id', c, 'kind', CAST(:kind AS TEXT)), :now"
    " FROM unnest(CAST(:ids AS BIGINT[]), CAST(:members AS BIGINT[]), CAST(:slots AS INT[]))"
    " AS x(c, m, s) ON CONFLICT DO NOTHING"
)


def _bulk_insert_coupons(
    db_session: Session,
    template: CouponTemplate,
    report: IssuanceReport,
    pairs: list[tuple[int, int]],
    now: datetime,
) -> list[tuple[int, int, int]]:
    """Insert (member, slot) coupons, skipping conflicts; returns (id, member, slot) inserted."""
    if not pairs:
        return []
    valid_from, valid_until = _window(template, now)
    common = {
        "template_id": template.id,
        "issue_key": report.key,
        "issuance_id": report.issuance_id,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    if _is_postgres(db_session):
        result = db_session.execute(
            _PG_COUPONS,
            {
                **common,
                "key": report.key,
                "now": now,
                "members": [m for m, _ in pairs],
                "slots": [slot for _, slot in pairs],
            },
        )
        return [(int(i), int(m), int(sl)) for i, m, sl in result.all()]
    rows = [
        {
            **common,
            "member_id": m,
            "slot": slot,
            "source": "issuance",
            "state": "issued",
            "issued_at": now,
            "updated_at": now,
        }
        for m, slot in pairs
    ]
    c = _table(Coupon)
    stmt = sqlite.insert(c).on_conflict_do_nothing().returning(c.c.id, c.c.member_id, c.c.slot)
    return [(int(i), int(m), int(sl)) for i, m, sl in db_session.execute(stmt, rows).all()]


def _bulk_insert_events(
    db_session: Session,
    template: CouponTemplate,
    inserted: list[tuple[int, int, int]],
    now: datetime,
) -> None:
    if not inserted:
        return
    if _is_postgres(db_session):
        db_session.execute(
            _PG_EVENTS,
            {
                "code": template.code,
                "kind": template.kind,
                "now": now,
                "ids": [i for i, _, _ in inserted],
                "members": [m for _, m, _ in inserted],
                "slots": [sl for _, _, sl in inserted],
            },
        )
        return
    events = [_issued_event(template, m, sl, now, i) for i, m, sl in inserted]
    _insert_ignoring_duplicates(db_session, _table(Event), events)
