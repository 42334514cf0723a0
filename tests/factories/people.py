"""Demo Tea's people: two regions, three stores, four guides and members they own.

East: SH001 (direct; guides Xiao Li and Xiao Wang), SH002 (franchise; guide Xiao Zhao).
North: BJ001 (direct; guide Xiao Chen). Wang Fang is Xiao Li's customer at SH001, Li Na is
Xiao Chen's at BJ001, Zhou Min registered at the franchise store SH002.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.identity.models import Identity, Member
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import MemberOwner

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class People:
    stores: dict[str, int]
    guides: dict[str, int]
    members: dict[str, int]


def _store(session: Session, code: str, region: str, kind: str = "direct") -> Store:
    row = Store(
        code=code, name=f"Demo Tea {code}", city=None, region=region, kind=kind, created_at=T0
    )
    session.add(row)
    session.flush()
    return row


def _guide(session: Session, staff_no: str, name: str, store: Store) -> Staff:
    row = Staff(
        staff_no=staff_no,
        name=name,
        role="guide",
        store_id=store.id,
        region=store.region,
        joined_at=T0,
    )
    session.add(row)
    session.flush()
    return row


def _member(session: Session, name: str, phone: str, store: str) -> Member:
    row = Member(
        name=name,
        gender="F",
        registered_at=T0,
        store_code=store,
        channel="pos",
        created_at=T0,
        updated_at=T0,
    )
    session.add(row)
    session.flush()
    session.add(Identity(type="phone", value=phone, member_id=row.id, first_seen_at=T0))
    session.flush()
    return row


def own(session: Session, *, member_id: int, guide: Staff | None, store: Store) -> None:
    session.add(
        MemberOwner(
            member_id=member_id,
            guide_id=None if guide is None else guide.id,
            store_id=store.id,
            origin_store_id=store.id,
            rule="registration_store",
            manual=False,
            assigned_at=T0,
            updated_at=T0,
        )
    )
    session.flush()


def seed_people(session_factory: sessionmaker[Session], *, owners: bool = True) -> People:
    """Stores, guides and three members, committed; `owners` also records who owns whom."""
    with transaction(session_factory) as session:
        sh1 = _store(session, "SH001", "East")
        sh2 = _store(session, "SH002", "East", kind="franchise")
        bj1 = _store(session, "BJ001", "North")
        li = _guide(session, "xiaoli", "Xiao Li", sh1)
        wang = _guide(session, "xiaowang", "Xiao Wang", sh1)
        zhao = _guide(session, "xiaozhao", "Xiao Zhao", sh2)
        chen = _guide(session, "xiaochen", "Xiao Chen", bj1)
        wf = _member(session, "Wang Fang", "13812345678", "SH001")
        ln = _member(session, "Li Na", "13900001111", "BJ001")
        zm = _member(session, "Zhou Min", "13700002222", "SH002")
        if owners:
            own(session, member_id=wf.id, guide=li, store=sh1)
            own(session, member_id=ln.id, guide=chen, store=bj1)
            own(session, member_id=zm.id, guide=zhao, store=sh2)
        return People(
            stores={"SH001": sh1.id, "SH002": sh2.id, "BJ001": bj1.id},
            guides={"xiaoli": li.id, "xiaowang": wang.id, "xiaozhao": zhao.id, "xiaochen": chen.id},
            members={"Wang Fang": wf.id, "Li Na": ln.id, "Zhou Min": zm.id},
        )
