"""Stores and staff as the API and console see them: scoped lists and HQ's upserts.

Bulk setup is the CSV import (`siyu import stores|staff`, ingest.directory); these functions
serve integrations (an HR system posting a new hire) and the console. Joining is an upsert of
an active staff row; leaving is `attribution.staff_leave` (it must hand over the members).
A supervisor sees the stores and staff of their region, a guide their own store's, HQ and
analysts everything. Writes are HQ's and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.schemas import Role
from siyu.access.scope import Viewer, may_see_member
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction
from siyu.staff import attribution
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.models import Staff, Store

STORE_KINDS = ("direct", "franchise", "online")
STAFF_ROLES = ("guide", "manager", "supervisor", "hq")


@dataclass(frozen=True)
class StoreRead:
    id: int
    code: str
    name: str
    city: str | None
    region: str | None
    kind: str
    active: bool


@dataclass(frozen=True)
class StaffRead:
    id: int
    staff_no: str
    name: str
    role: str
    store_code: str | None
    region: str | None
    active: bool
    joined_at: datetime | None
    left_at: datetime | None


def list_stores(*, session_factory: sessionmaker[Session], viewer: Viewer) -> list[StoreRead]:
    with session_factory() as session:
        query = sa.select(Store).order_by(Store.code)
        region = _region(session, viewer)
        if region is not None:
            query = query.where(Store.region == region)
        return [_store(s) for s in session.scalars(query)]


def list_staff(
    *, session_factory: sessionmaker[Session], viewer: Viewer, include_left: bool = False
) -> list[StaffRead]:
    with session_factory() as session:
        query = sa.select(Staff, Store.code).outerjoin(Store, Store.id == Staff.store_id)
        region = _region(session, viewer)
        if region is not None:
            query = query.where(sa.func.coalesce(Store.region, Staff.region) == region)
        if not include_left:
            query = query.where(Staff.active.is_(True))
        rows = session.execute(query.order_by(Staff.staff_no)).all()
        return [_staff(s, code) for s, code in rows]


def upsert_store(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    code: str,
    name: str,
    city: str | None = None,
    region: str | None = None,
    kind: str = "direct",
) -> StoreRead:
    """HQ creates a store or updates it by code."""
    _hq(viewer)
    if kind not in STORE_KINDS:
        raise StaffError(StaffErrorCode.UNKNOWN_STORE, f"kind {kind!r}: one of {STORE_KINDS}")
    now = clock.now()
    with transaction(session_factory) as session:
        row = session.scalar(sa.select(Store).where(Store.code == code))
        if row is None:
            row = Store(code=code, name=name, created_at=now)
            session.add(row)
        row.name, row.city, row.region, row.kind, row.active = name, city, region, kind, True
        session.flush()
        _audit(session, viewer, now, "store.upsert", "store", row.id)
        return _store(row)


def upsert_staff(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    staff_no: str,
    name: str,
    role: str = "guide",
    store_code: str | None = None,
) -> StaffRead:
    """HQ adds a staff member (a join) or updates one by staff_no; a leaver rejoins active."""
    _hq(viewer)
    if role not in STAFF_ROLES:
        raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"role {role!r}: one of {STAFF_ROLES}")
    now = clock.now()
    with transaction(session_factory) as session:
        store = None
        if store_code is not None:
            store = session.scalar(sa.select(Store).where(Store.code == store_code))
            if store is None:
                raise StaffError(StaffErrorCode.UNKNOWN_STORE, f"no store {store_code!r}")
        row = session.scalar(sa.select(Staff).where(Staff.staff_no == staff_no))
        if row is None:
            row = Staff(staff_no=staff_no, name=name, joined_at=now)
            session.add(row)
        elif not row.active:
            row.joined_at, row.left_at = now, None
        row.name, row.role, row.active = name, role, True
        row.store_id = None if store is None else store.id
        row.region = None if store is None else store.region
        session.flush()
        _audit(session, viewer, now, "staff.upsert", "staff", row.id)
        return _staff(row, store_code)


def staff_id_of(*, session_factory: sessionmaker[Session], staff_no: str) -> int:
    with session_factory() as session:
        found = session.scalar(sa.select(Staff.id).where(Staff.staff_no == staff_no))
    if found is None:
        raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"no staff member {staff_no!r}")
    return int(found)


def staff_no_of(*, session_factory: sessionmaker[Session], staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    with session_factory() as session:
        return session.scalar(sa.select(Staff.staff_no).where(Staff.id == staff_id))


def _region(session: Session, viewer: Viewer) -> str | None:
    """The region a viewer is limited to (None: all); a scoped viewer without one sees '∅'."""
    if viewer.sees_everything:
        return None
    if viewer.role is Role.SUPERVISOR and viewer.region:
        return viewer.region
    if viewer.staff_id is not None:
        found = session.scalar(
            sa.select(Store.region).join(Staff, Staff.store_id == Store.id)
            .where(Staff.id == viewer.staff_id)
        )  # fmt: skip
        if found:
            return str(found)
    return "\x00no-region"  # fail closed


def _hq(viewer: Viewer) -> None:
    if viewer.role is not Role.HQ:
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "only HQ sets up stores and staff")


def _audit(
    session: Session, viewer: Viewer, now: datetime, action: str, kind: str, entity: int
) -> None:
    audit_service.record(
        db_session=session, now=now, actor=viewer.actor, action=action, entity_type=kind,
        entity_id=entity,
    )  # fmt: skip


def _store(s: Store) -> StoreRead:
    return StoreRead(
        id=s.id, code=s.code, name=s.name, city=s.city, region=s.region, kind=s.kind,
        active=s.active,
    )  # fmt: skip


def _staff(s: Staff, store_code: str | None) -> StaffRead:
    return StaffRead(
        id=s.id, staff_no=s.staff_no, name=s.name, role=s.role, store_code=store_code,
        region=s.region, active=s.active, joined_at=s.joined_at, left_at=s.left_at,
    )  # fmt: skip


def reassign_member(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    member_id: int,
    staff_no: str,
) -> attribution.Owner:
    """HQ, or a supervisor within their region, hands a member to a guide by hand."""
    _hq_or_supervisor(viewer)
    with session_factory() as session:
        if not may_see_member(session, viewer, member_id):
            raise StaffError(StaffErrorCode.UNKNOWN_MEMBER, f"no member {member_id}")
        _check_staff_in_scope(session, viewer, staff_no)
    return attribution.assign_member(
        session_factory=session_factory, clock=clock, member_id=member_id, staff_no=staff_no,
        actor=viewer.actor,
    )  # fmt: skip


def staff_leaves(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    staff_no: str,
    to_staff_no: str | None,
) -> dict[str, int]:
    """HQ, or the supervisor of the leaver's region, records a leave and hands members over."""
    _hq_or_supervisor(viewer)
    with session_factory() as session:
        _check_staff_in_scope(session, viewer, staff_no)
        if to_staff_no is not None:
            _check_staff_in_scope(session, viewer, to_staff_no)
    return attribution.staff_leave(
        session_factory=session_factory, clock=clock, staff_no=staff_no,
        to_staff_no=to_staff_no, actor=viewer.actor,
    )  # fmt: skip


def owner_with_history(
    *, session_factory: sessionmaker[Session], viewer: Viewer, member_id: int
) -> dict[str, object]:
    with session_factory() as session:
        if not may_see_member(session, viewer, member_id):
            raise StaffError(StaffErrorCode.UNKNOWN_MEMBER, f"no member {member_id}")
        current = attribution.owner_of(session, member_id=member_id)
        history = attribution.owner_history(session, member_id=member_id)
    return {"owner": None if current is None else current.__dict__, "history": history}


def _hq_or_supervisor(viewer: Viewer) -> None:
    if viewer.role not in (Role.HQ, Role.SUPERVISOR):
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "only HQ or a supervisor reassigns")


def _check_staff_in_scope(session: Session, viewer: Viewer, staff_no: str) -> None:
    row = session.execute(
        sa.select(Staff.id, Store.region).outerjoin(Store, Store.id == Staff.store_id)
        .where(Staff.staff_no == staff_no)
    ).first()  # fmt: skip
    region = _region(session, viewer)
    if row is None or (region is not None and row[1] != region):
        raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"no staff member {staff_no!r}")
