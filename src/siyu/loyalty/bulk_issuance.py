"""Bulk issuance: one template to a list of members (a segment, a file), in batches of one
transaction each, restartable by the issuance key, with a deterministic holdout for ROI.

Each batch takes its budget in one conditional UPDATE (falling back to what is left), inserts
the coupons with ON CONFLICT DO NOTHING (a concurrent single claim may have taken a slot) and
gives back the budget of what was skipped, all in the batch's transaction (ADR 0001). On
PostgreSQL the rows go in as one array per column through unnest(): a 5,000-row VALUES list
has 55,000 parameters, which the driver parses slower than the server inserts them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import insert_ignoring_duplicates, transaction
from siyu.identity.models import Member
from siyu.ingest.models import Event
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.issuance import (
    SHANGHAI,
    _issuable_template,
    _issued_event,
    _table,
    _window,
    give_back_budget,
    load_template,
    take_budget,
)
from siyu.loyalty.models import (
    Coupon,
    CouponHoldout,
    CouponIssuance,
    CouponTemplate,
    IssuanceStatus,
)

BULK_BATCH = 5000


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
    insert_ignoring_duplicates(
        db_session,
        _table(CouponHoldout),
        [{"issuance_id": report.issuance_id, "member_id": m} for m in held],
    )
    slots = _slots_for(db_session, template, report.key, [m for m in known if m not in held])
    day = now.astimezone(tz).date()
    granted = take_budget(db_session, template, count=len(slots), day=day)
    pairs = sorted(slots.items())[:granted]
    inserted = _insert_coupons_and_events(db_session, template, report, pairs, now)
    give_back_budget(db_session, template, count=granted - inserted, day=day)
    batch = IssuanceReport(
        issuance_id=report.issuance_id,
        key=report.key,
        targeted=len(chunk),
        issued=inserted,
        skipped=len(chunk) - inserted - len(held),
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


# Coupons and their coupon_issued events in one statement: the events are made from the
# coupons' RETURNING rows on the server, so no ids travel back and forth.
_PG_COUPONS_AND_EVENTS = sa.text(
    "WITH ins AS (INSERT INTO coupons (template_id, member_id, slot, issue_key, source,"
    " issuance_id, state, valid_from, valid_until, issued_at, updated_at)"
    " SELECT :template_id, m, s, :key, 'issuance', :issuance_id, 'issued', :valid_from,"
    " :valid_until, :now, :now FROM unnest(CAST(:members AS BIGINT[]), CAST(:slots AS INT[]))"
    " AS x(m, s) ON CONFLICT DO NOTHING RETURNING id, member_id, slot),"
    " ev AS (INSERT INTO events (event_id, type, occurred_at, member_id, identities, properties,"
    " received_at) SELECT 'coupon_issued:' || :code || ':' || member_id || ':' || slot,"
    " 'coupon_issued', :now, member_id, CAST('{}' AS JSON), json_build_object('template_code',"
    " CAST(:code AS TEXT), 'coupon_id', id, 'kind', CAST(:kind AS TEXT)), :now FROM ins"
    " ON CONFLICT DO NOTHING)"
    " SELECT count(*) FROM ins"
)


def _insert_coupons_and_events(
    db_session: Session,
    template: CouponTemplate,
    report: IssuanceReport,
    pairs: list[tuple[int, int]],
    now: datetime,
) -> int:
    """Insert (member, slot) coupons skipping conflicts, and their events; returns inserted."""
    if not pairs:
        return 0
    if not _is_postgres(db_session):
        inserted = _bulk_insert_coupons(db_session, template, report, pairs, now)
        _bulk_insert_events(db_session, template, inserted, now)
        return len(inserted)
    valid_from, valid_until = _window(template, now)
    params = {
        "template_id": template.id,
        "key": report.key,
        "issuance_id": report.issuance_id,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "now": now,
        "code": template.code,
        "kind": template.kind,
        "members": [m for m, _ in pairs],
        "slots": [slot for _, slot in pairs],
    }
    return int(db_session.execute(_PG_COUPONS_AND_EVENTS, params).scalar_one())


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
    insert_ignoring_duplicates(db_session, _table(Event), events)
