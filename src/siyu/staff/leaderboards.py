"""Guide and store performance: the region dashboard, rankings and PK contests.

Metrics over a period of business dates [start, end] (both inclusive), per guide or store:
- `gmv`: amount of the non-refunded orders paid in the period by members the guide (store)
  owns NOW (warehouse `orders` ⋈ `member_owners`; ownership is credited as of the last sync,
  so a reassigned member's history follows the new owner — the rule every brand we asked
  uses for "my customers' sales");
- `orders`: how many such orders; `conversions`: how many distinct owned members bought;
- `new_customers`: members first attributed to the guide/store in the period
  (`member_owners.assigned_at`, operational store);
- `tasks_done`, `tasks_total`, `task_completion` (done / total): guide tasks due in the period.
Scoping: HQ and analysts see every guide and store; a supervisor and a guide see their
region (a guide's ranking is among the guides of their region — names and figures only,
never customers).
A contest (`staff_contests`) fixes the level, metric, participants (store codes or staff
numbers) and period; its leaderboard is computed on demand with the same metrics.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer
from siyu.audit import service as audit_service
from siyu.clock import Clock
from siyu.db import transaction
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import Contest, GuideTask, MemberOwner
from siyu.warehouse.duckdb import DuckDBWarehouse

METRICS = ("gmv", "orders", "conversions", "new_customers", "task_completion", "tasks_done")
LEVELS = ("guide", "store")


@dataclass
class Performance:
    """One guide's or store's figures over a period."""

    key: str  # staff_no or store code
    name: str
    store: str | None
    region: str | None
    gmv: Decimal = Decimal("0")
    orders: int = 0
    conversions: int = 0
    new_customers: int = 0
    tasks_done: int = 0
    tasks_total: int = 0
    rank: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def task_completion(self) -> float:
        return self.tasks_done / self.tasks_total if self.tasks_total else 0.0

    def value(self, metric: str) -> Decimal | float | int:
        return getattr(self, metric)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ContestRead:
    id: int
    name: str
    level: str
    metric: str
    participants: tuple[str, ...]
    starts_on: date
    ends_on: date


def performance(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse,
    viewer: Viewer,
    level: str,
    start: date,
    end: date,
    tz: ZoneInfo,
    metric: str = "gmv",
    only: list[str] | None = None,
) -> list[Performance]:
    """Every guide (or store) the viewer may see, ranked by `metric` (highest first)."""
    _check(level=level, metric=metric, start=start, end=end)
    with session_factory() as session:
        rows = _units(session, level=level, viewer=viewer)
        if only is not None:
            rows = {k: v for k, v in rows.items() if k in set(only)}
        _add_operational(session, rows, level=level, start=start, end=end, tz=tz)
    _add_sales(warehouse, rows, level=level, start=start, end=end)
    return rank(list(rows.values()), metric=metric)


def rank(rows: list[Performance], *, metric: str) -> list[Performance]:
    """Order by the metric, highest first (ties share a rank; then by key)."""
    rows.sort(key=lambda r: (-float(r.value(metric)), r.key))
    previous: object = None
    for position, row in enumerate(rows, start=1):
        value = row.value(metric)
        row.rank = rows[position - 2].rank if position > 1 and value == previous else position
        previous = value
    return rows


def create_contest(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    name: str,
    level: str,
    metric: str,
    participants: list[str],
    starts_on: date,
    ends_on: date,
    tz: ZoneInfo,
) -> ContestRead:
    """HQ or a supervisor opens a PK contest between stores or guides."""
    if not viewer.may_write or viewer.role.value not in ("hq", "supervisor"):
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "only HQ or a supervisor creates contests")
    _check(level=level, metric=metric, start=starts_on, end=ends_on)
    name = name.strip()
    if not 2 <= len(name) <= 128 or len(set(participants)) < 2:
        raise StaffError(
            StaffErrorCode.INVALID_CONTEST, "a contest needs a 2-128 character name and ≥2 sides"
        )
    now = clock.now()
    with transaction(session_factory) as session:
        known = _units(session, level=level, viewer=viewer)
        unknown = sorted(set(participants) - set(known))
        if unknown:
            raise StaffError(
                StaffErrorCode.INVALID_CONTEST, f"unknown or out-of-scope {level}: {unknown}"
            )
        if session.scalar(sa.select(Contest.id).where(Contest.name == name)) is not None:
            raise StaffError(StaffErrorCode.INVALID_CONTEST, f"a contest named {name!r} exists")
        row = Contest(
            name=name, level=level, metric=metric, participants=sorted(set(participants)),
            starts_on=_day_start(starts_on, tz), ends_on=_day_start(ends_on, tz),
            created_at=now,
        )  # fmt: skip
        session.add(row)
        session.flush()
        audit_service.record(
            db_session=session, now=now, actor=viewer.actor, action="contest.create",
            entity_type="staff_contest", entity_id=row.id, detail={"name": name},
        )  # fmt: skip
        return _contest(row, tz)


def list_contests(*, session_factory: sessionmaker[Session], tz: ZoneInfo) -> list[ContestRead]:
    with session_factory() as session:
        rows = session.scalars(sa.select(Contest).order_by(Contest.starts_on.desc(), Contest.id))
        return [_contest(r, tz) for r in rows]


def contest_leaderboard(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse,
    viewer: Viewer,
    contest_id: int,
    tz: ZoneInfo,
) -> tuple[ContestRead, list[Performance]]:
    """The contest and its sides ranked by its metric over its period."""
    with session_factory() as session:
        row = session.get(Contest, contest_id)
        if row is None:
            raise StaffError(StaffErrorCode.INVALID_CONTEST, f"no contest {contest_id}")
        contest = _contest(row, tz)
    board = performance(
        session_factory=session_factory, warehouse=warehouse, viewer=Viewer.system(viewer.actor),
        level=contest.level, start=contest.starts_on, end=contest.ends_on, tz=tz,
        metric=contest.metric, only=list(contest.participants),
    )  # fmt: skip
    return contest, board


def _check(*, level: str, metric: str, start: date, end: date) -> None:
    if level not in LEVELS:
        raise StaffError(StaffErrorCode.INVALID_CONTEST, f"level {level!r}: guide or store")
    if metric not in METRICS:
        raise StaffError(
            StaffErrorCode.INVALID_CONTEST, f"metric {metric!r}: one of {', '.join(METRICS)}"
        )
    if end < start or (end - start).days > 366:
        raise StaffError(StaffErrorCode.INVALID_CONTEST, "period: start ≤ end, at most a year")


def _units(session: Session, *, level: str, viewer: Viewer) -> dict[str, Performance]:
    region = None if viewer.sees_everything else (viewer.region or _region_of(session, viewer))
    if not viewer.sees_everything and region is None:
        return {}
    if level == "store":
        query = sa.select(Store).where(Store.active.is_(True))
        if region is not None:
            query = query.where(Store.region == region)
        return {
            s.code: Performance(key=s.code, name=s.name, store=s.code, region=s.region)
            for s in session.scalars(query.order_by(Store.code))
        }
    guides = (
        sa.select(Staff, Store)
        .outerjoin(Store, Store.id == Staff.store_id)
        .where(Staff.role == "guide", Staff.active.is_(True))
    )
    if region is not None:
        guides = guides.where(Store.region == region)
    return {
        g.staff_no: Performance(
            key=g.staff_no, name=g.name, store=s.code if s else None, region=s.region if s else None
        )
        for g, s in session.execute(guides.order_by(Staff.staff_no)).all()
    }


def _region_of(session: Session, viewer: Viewer) -> str | None:
    if viewer.staff_id is None:
        return None
    return session.scalar(
        sa.select(Store.region).join(Staff, Staff.store_id == Store.id)
        .where(Staff.id == viewer.staff_id)
    )  # fmt: skip


def _add_operational(
    session: Session,
    rows: dict[str, Performance],
    *,
    level: str,
    start: date,
    end: date,
    tz: ZoneInfo,
) -> None:
    lo, hi = _day_start(start, tz), _day_start(end + timedelta(days=1), tz)
    unit = Store.code if level == "store" else Staff.staff_no
    join = Store.id == (MemberOwner.store_id if level == "store" else Staff.store_id)
    owners = sa.select(unit, sa.func.count()).select_from(MemberOwner)
    owners = owners.outerjoin(Staff, Staff.id == MemberOwner.guide_id).outerjoin(Store, join)
    owners = owners.where(MemberOwner.assigned_at >= lo, MemberOwner.assigned_at < hi)
    for key, count in session.execute(owners.group_by(unit)).all():
        if key in rows:
            rows[key].new_customers = int(count)
    done = sa.func.sum(sa.case((GuideTask.status == "done", 1), else_=0))
    task_join = Store.id == GuideTask.store_id
    counted = (
        sa.select(unit, sa.func.count(), done).select_from(GuideTask)
        .join(Staff, Staff.id == GuideTask.guide_id).outerjoin(Store, task_join)
        .where(GuideTask.due_at >= lo, GuideTask.due_at < hi, GuideTask.status != "cancelled")
        .group_by(unit)
    )  # fmt: skip
    for key, total, finished in session.execute(counted).all():
        if key in rows:
            rows[key].tasks_total, rows[key].tasks_done = int(total), int(finished or 0)


def _add_sales(
    warehouse: DuckDBWarehouse,
    rows: dict[str, Performance],
    *,
    level: str,
    start: date,
    end: date,
) -> None:
    column = "owner_store" if level == "store" else "owner_guide"
    found = warehouse.query(
        f"SELECT mo.{column}, COALESCE(SUM(o.amount), 0), COUNT(*), COUNT(DISTINCT o.member_id) "
        "FROM orders o JOIN member_owners mo ON mo.member_id = o.member_id "
        "WHERE NOT o.refunded AND o.paid_date BETWEEN ? AND ? "
        f"AND mo.{column} IS NOT NULL GROUP BY 1",
        [start, end],
    )
    totals: dict[str, tuple[Decimal, int, int]] = defaultdict(lambda: (Decimal(0), 0, 0))
    for key, gmv, orders, buyers in found:
        totals[str(key)] = (Decimal(str(gmv)), int(orders), int(buyers))
    for key, row in rows.items():
        row.gmv, row.orders, row.conversions = totals[key]


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def _contest(row: Contest, tz: ZoneInfo) -> ContestRead:
    return ContestRead(
        id=row.id, name=row.name, level=row.level, metric=row.metric,
        participants=tuple(row.participants), starts_on=row.starts_on.astimezone(tz).date(),
        ends_on=row.ends_on.astimezone(tz).date(),
    )  # fmt: skip
