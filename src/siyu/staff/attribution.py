"""Who owns a member: the owner guide and store, decided by configurable rules, with history.

Rules, tried in the configured order (`set_rules`; default `DEFAULT_RULES`), first match wins:
- `channel_code`: the guide (and store) of the first channel code (活码) the member scanned
  (the growth domain's `growth_attributions` row, read by table name);
- `last_served`: the guide of the member's latest `guide_served` / `wecom_contact_added` event
  (property `staff_no` or `userid`);
- `registration_store`: the store the member registered at; the guide is that store's active
  guide with the fewest owned members (ties: lowest staff id), so a store's customers are
  spread evenly among its guides.
A manual assignment (`assign_member`) is never overridden by the rules.
"From where it came, back where it goes" (Anta): a member who registered at a franchise store
stays with that store; a rule proposing a guide of another store is skipped for them, and when
their guide leaves only a guide of that same store may take them over. The HQ e-commerce team
excludes them with the segment `{"attr": "owner_store", "op": "ne", ...}` on franchise codes.
Every change of owner writes a `member_owner_history` row (rule, reason, actor, instant).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import MemberOwner, MemberOwnerHistory, StaffSetting

RULES = ("channel_code", "last_served", "registration_store")
DEFAULT_RULES = RULES
_RULES_KEY = "attribution_rules"
_SERVED_EVENTS = ("guide_served", "wecom_contact_added")
_CHUNK = 2_000
_members = sa.table(
    "members",
    sa.column("id"),
    sa.column("store_code"),
    sa.column("merged_into_id"),
    sa.column("erased_at"),
)
_events = sa.table(
    "events", sa.column("member_id"), sa.column("type"), sa.column("occurred_at"),
    sa.column("properties", sa.JSON),
)  # fmt: skip
_growth = sa.table(
    "growth_attributions", sa.column("member_id"), sa.column("userid"), sa.column("store_code")
)


@dataclass(frozen=True)
class Owner:
    member_id: int
    guide_id: int | None
    store_id: int | None
    rule: str
    manual: bool


@dataclass(frozen=True)
class _Candidate:
    guide_id: int | None
    store_id: int | None
    rule: str


@dataclass
class _Directory:
    """Stores and active guides, loaded once per run."""

    stores: dict[str, Store]
    guides_by_no: dict[str, Staff]
    guides_by_store: dict[int, list[Staff]]
    load: Counter[int]

    def store_kind(self, store_id: int | None) -> str | None:
        return next((s.kind for s in self.stores.values() if s.id == store_id), None)

    def least_loaded(self, store_id: int) -> Staff | None:
        guides = self.guides_by_store.get(store_id, [])
        return min(guides, key=lambda g: (self.load[g.id], g.id), default=None)


def owner_of(session: Session, *, member_id: int) -> Owner | None:
    """The member's current owner, or None when no rule has attributed them yet."""
    row = session.get(MemberOwner, member_id)
    return None if row is None else _owner(row)


def get_rules(session: Session) -> tuple[str, ...]:
    row = session.get(StaffSetting, _RULES_KEY)
    return DEFAULT_RULES if row is None else tuple(row.value)


def set_rules(
    *, session_factory: sessionmaker[Session], clock: Clock, rules: Sequence[str], actor: str
) -> tuple[str, ...]:
    """Choose which attribution rules apply and in which order."""
    unknown = [r for r in rules if r not in RULES]
    if unknown or not rules or len(set(rules)) != len(rules):
        raise StaffError(
            StaffErrorCode.INVALID_RULES,
            f"attribution rules {list(rules)}: give each of {', '.join(RULES)} at most once",
        )
    now = clock.now()
    with transaction(session_factory) as session:
        row = session.get(StaffSetting, _RULES_KEY)
        if row is None:
            session.add(StaffSetting(key=_RULES_KEY, value=list(rules), updated_at=now))
        else:
            row.value, row.updated_at = list(rules), now
        audit_service.record(
            db_session=session, now=now, actor=actor, action="attribution.rules",
            entity_type="staff_setting", entity_id=_RULES_KEY, detail={"rules": list(rules)},
        )  # fmt: skip
    return tuple(rules)


def attribute_members(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    member_ids: Iterable[int] | None = None,
    actor: str = "system",
) -> dict[str, int]:
    """Apply the rules to these members (default: every live member); returns counts per rule."""
    now = clock.now()
    counts: Counter[str] = Counter()
    with session_factory() as session:
        ids = sorted(member_ids) if member_ids is not None else _live_member_ids(session)
    for start in range(0, len(ids), _CHUNK):
        with transaction(session_factory) as session:
            directory = _directory(session)
            rules = get_rules(session)
            chunk = ids[start : start + _CHUNK]
            for member_id, candidate in _candidates(session, directory, rules, chunk).items():
                if _apply(session, directory, member_id, candidate, now=now, actor=actor):
                    counts[candidate.rule] += 1
    return dict(counts)


def assign_member(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    member_id: int,
    staff_no: str,
    actor: str,
) -> Owner:
    """HQ or a supervisor hands a member to a guide by hand; the rules leave it alone after."""
    now = clock.now()
    with transaction(session_factory) as session:
        if session.scalar(sa.select(_members.c.id).where(_members.c.id == member_id)) is None:
            raise StaffError(StaffErrorCode.UNKNOWN_MEMBER, f"no member {member_id}")
        guide = _active_staff(session, staff_no)
        cand = _Candidate(guide_id=guide.id, store_id=guide.store_id, rule="manual")
        _apply(session, _directory(session), member_id, cand, now=now, actor=actor, manual=True)
        return _owner(session.get_one(MemberOwner, member_id))


def staff_leave(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    staff_no: str,
    to_staff_no: str | None,
    actor: str,
) -> dict[str, int]:
    """A guide leaves: deactivate them and hand each of their members to a successor.

    With `to_staff_no` every member goes to that guide (refused for franchise-origin members
    of another store, who go to their own store's least-loaded guide instead); without it,
    each member goes to the least-loaded remaining guide of the member's owner store. Open
    tasks of the leaver are cancelled (their journeys re-create them for the new owner).
    """
    now = clock.now()
    with transaction(session_factory) as session:
        leaver = _active_staff(session, staff_no)
        leaver.active, leaver.left_at = False, now
        session.flush()
        directory = _directory(session)
        target = None if to_staff_no is None else _active_staff(session, to_staff_no)
        moved, orphaned = 0, 0
        owned = session.scalars(
            sa.select(MemberOwner)
            .where(MemberOwner.guide_id == leaver.id)
            .order_by(MemberOwner.member_id)
        ).all()
        for row in owned:
            successor = _successor(directory, row, target)
            cand = _Candidate(
                guide_id=None if successor is None else successor.id,
                store_id=row.store_id if successor is None else successor.store_id,
                rule="reassigned",
            )
            _apply(session, directory, row.member_id, cand, now=now, actor=actor,
                   manual=row.manual, reason=f"{staff_no} left")  # fmt: skip
            moved += successor is not None
            orphaned += successor is None
        cancelled = _cancel_open_tasks(
            session, guide_id=leaver.id, now=now, reason=f"{staff_no} left"
        )
        audit_service.record(
            db_session=session, now=now, actor=actor, action="staff.leave", entity_type="staff",
            entity_id=leaver.id, detail={"to": to_staff_no, "moved": moved, "orphaned": orphaned},
        )  # fmt: skip
    return {"moved": moved, "without_guide": orphaned, "tasks_cancelled": cancelled}


def owner_history(session: Session, *, member_id: int) -> list[dict[str, object]]:
    rows = session.scalars(
        sa.select(MemberOwnerHistory)
        .where(MemberOwnerHistory.member_id == member_id)
        .order_by(MemberOwnerHistory.id)
    )
    return [
        {
            "at": r.at.isoformat(), "rule": r.rule, "reason": r.reason, "actor": r.actor,
            "from_guide_id": r.from_guide_id, "to_guide_id": r.to_guide_id,
            "from_store_id": r.from_store_id, "to_store_id": r.to_store_id,
        }
        for r in rows
    ]  # fmt: skip


def _successor(directory: _Directory, row: MemberOwner, target: Staff | None) -> Staff | None:
    franchise_bound = directory.store_kind(row.origin_store_id) == "franchise"
    if target is not None and not (franchise_bound and target.store_id != row.origin_store_id):
        return target
    store_id = row.origin_store_id if franchise_bound else row.store_id
    return None if store_id is None else directory.least_loaded(store_id)


def _cancel_open_tasks(session: Session, *, guide_id: int, now: datetime, reason: str) -> int:
    from siyu.staff.models_guides import GuideTask

    result = session.execute(
        sa.update(GuideTask)
        .where(GuideTask.guide_id == guide_id, GuideTask.status == "open")
        .values(status="cancelled", result={"by": "system", "reason": reason})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _live_member_ids(session: Session) -> list[int]:
    query = sa.select(_members.c.id).where(
        _members.c.merged_into_id.is_(None), _members.c.erased_at.is_(None)
    )
    return list(session.scalars(query.order_by(_members.c.id)))


def _directory(session: Session) -> _Directory:
    stores = {s.code: s for s in session.scalars(sa.select(Store))}
    guides = list(
        session.scalars(sa.select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
    )
    by_store: dict[int, list[Staff]] = {}
    for g in guides:
        if g.store_id is not None and g.role == "guide":
            by_store.setdefault(g.store_id, []).append(g)
    counted = session.execute(
        sa.select(MemberOwner.guide_id, sa.func.count())
        .where(MemberOwner.guide_id.is_not(None))
        .group_by(MemberOwner.guide_id)
    ).all()
    load: Counter[int] = Counter({int(g or 0): int(n) for g, n in counted})
    return _Directory(
        stores=stores, guides_by_no={g.staff_no: g for g in guides}, guides_by_store=by_store,
        load=load,
    )  # fmt: skip


def _candidates(
    session: Session, directory: _Directory, rules: Sequence[str], ids: Sequence[int]
) -> dict[int, _Candidate]:
    origin: dict[int, str | None] = dict(
        session.execute(
            sa.select(_members.c.id, _members.c.store_code).where(_members.c.id.in_(ids))
        ).all()
    )
    proposals = {
        "channel_code": _by_channel_code(session, directory, ids),
        "last_served": _by_last_served(session, directory, ids),
    }
    found: dict[int, _Candidate] = {}
    for member_id in ids:
        home = directory.stores.get(origin.get(member_id) or "")
        for rule in rules:
            cand = (
                _by_registration(directory, home)
                if rule == "registration_store"
                else proposals[rule].get(member_id)
            )
            if cand is None:
                continue
            if home is not None and home.kind == "franchise" and cand.store_id != home.id:
                continue  # from where it came, back where it goes
            found[member_id] = cand
            break
    return found


def _by_registration(directory: _Directory, home: Store | None) -> _Candidate | None:
    if home is None:
        return None
    guide = directory.least_loaded(home.id)
    return _Candidate(guide_id=None if guide is None else guide.id, store_id=home.id,
                      rule="registration_store")  # fmt: skip


def _by_guide(directory: _Directory, staff_no: object, rule: str) -> _Candidate | None:
    guide = directory.guides_by_no.get(str(staff_no))
    return None if guide is None else _Candidate(guide.id, guide.store_id, rule)


def _by_channel_code(
    session: Session, directory: _Directory, ids: Sequence[int]
) -> dict[int, _Candidate]:
    if not sa.inspect(session.get_bind()).has_table("growth_attributions"):
        return {}
    rows = session.execute(
        sa.select(_growth.c.member_id, _growth.c.userid).where(_growth.c.member_id.in_(ids))
    ).all()
    found = {m: _by_guide(directory, userid, "channel_code") for m, userid in rows}
    return {m: c for m, c in found.items() if c is not None}


def _by_last_served(
    session: Session, directory: _Directory, ids: Sequence[int]
) -> dict[int, _Candidate]:
    rows = session.execute(
        sa.select(_events.c.member_id, _events.c.properties)
        .where(_events.c.member_id.in_(ids), _events.c.type.in_(_SERVED_EVENTS))
        .order_by(_events.c.occurred_at)
    ).all()
    found: dict[int, _Candidate] = {}
    for member_id, props in rows:  # later events overwrite earlier ones: the last one wins
        props = props or {}
        cand = _by_guide(directory, props.get("staff_no") or props.get("userid"), "last_served")
        if cand is not None:
            found[member_id] = cand
    return found


def _apply(
    session: Session,
    directory: _Directory,
    member_id: int,
    cand: _Candidate,
    *,
    now: datetime,
    actor: str,
    manual: bool = False,
    reason: str | None = None,
) -> bool:
    row = session.get(MemberOwner, member_id)
    if row is not None and row.manual and not manual and cand.rule != "reassigned":
        return False
    if row is not None and (row.guide_id, row.store_id) == (cand.guide_id, cand.store_id):
        return False
    session.add(
        MemberOwnerHistory(
            member_id=member_id,
            from_guide_id=None if row is None else row.guide_id,
            to_guide_id=cand.guide_id,
            from_store_id=None if row is None else row.store_id,
            to_store_id=cand.store_id,
            rule=cand.rule, reason=reason, actor=actor, at=now,
        )
    )  # fmt: skip
    if row is None:
        home = directory.stores.get(
            session.scalar(sa.select(_members.c.store_code).where(_members.c.id == member_id)) or ""
        )
        origin = cand.store_id if home is None else home.id
        row = MemberOwner(member_id=member_id, origin_store_id=origin, assigned_at=now)
        session.add(row)
    if row.guide_id is not None:
        directory.load[row.guide_id] -= 1
    if cand.guide_id is not None:
        directory.load[cand.guide_id] += 1
    row.guide_id, row.store_id, row.rule = cand.guide_id, cand.store_id, cand.rule
    row.manual, row.updated_at = manual or row.manual, now
    session.flush()
    return True


def _active_staff(session: Session, staff_no: str) -> Staff:
    staff = session.scalar(sa.select(Staff).where(Staff.staff_no == staff_no))
    if staff is None or not staff.active:
        raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"no active staff member {staff_no!r}")
    return staff


def _owner(row: MemberOwner) -> Owner:
    return Owner(
        member_id=row.member_id, guide_id=row.guide_id, store_id=row.store_id, rule=row.rule,
        manual=row.manual,
    )  # fmt: skip
