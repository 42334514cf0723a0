"""Use cases of the guide task centre for adapters (API, console): each owns its transaction.

- `tasks_in_scope`: a guide's own tasks for the day; a supervisor's region; HQ/analyst all
  (bounded by `limit`, newest due first) — scoping is decided here, not in the adapters.
- `assign_task`: a supervisor (their region's guides) or HQ gives a guide a task about members
  that guide owns; members the guide does not own are refused by name, so a supervisor cannot
  route another store's customers through a task.
- `complete` / `tick_member`: the guide (or their supervisor, HQ) marks a whole task, or one
  member on it, done.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.clock import Clock
from siyu.db import transaction
from siyu.staff import tasks
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import GuideTask, MemberOwner


def tasks_in_scope(
    *,
    session_factory: sessionmaker[Session],
    viewer: Viewer,
    now: datetime,
    tz: ZoneInfo,
    day: date | None = None,
    limit: int = 200,
) -> list[tasks.GuideTaskRead]:
    """The caller's task list for a day: open tasks due by its end and those done that day."""
    day = day or now.astimezone(tz).date()
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = start + timedelta(days=1)
    with session_factory() as session:
        query = sa.select(GuideTask).where(
            ((GuideTask.status == "open") & (GuideTask.due_at < end))
            | ((GuideTask.status == "done") & (GuideTask.done_at >= start)
               & (GuideTask.done_at < end))
        )  # fmt: skip
        if viewer.role is Role.GUIDE:
            query = query.where(GuideTask.guide_id == (viewer.staff_id or -1))
        elif viewer.role is Role.SUPERVISOR:
            region = sa.select(Store.id).where(Store.region == (viewer.region or "\x00"))
            query = query.where(GuideTask.store_id.in_(region))
        rows = session.scalars(
            query.order_by(GuideTask.status.desc(), GuideTask.due_at, GuideTask.id).limit(limit)
        ).all()
        return [tasks.get_task(session, task_id=r.id, viewer=viewer) for r in rows]


def get(
    *, session_factory: sessionmaker[Session], viewer: Viewer, task_id: int
) -> tasks.GuideTaskRead:
    with session_factory() as session:
        return tasks.get_task(session, task_id=task_id, viewer=viewer)


def assign_task(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    staff_no: str,
    title: str,
    kind: str,
    member_ids: list[int],
    due_at: datetime,
    body: str | None = None,
    source_key: str | None = None,
) -> tasks.GuideTaskRead:
    """A supervisor or HQ gives a guide a task about members the guide owns."""
    if viewer.role not in (Role.HQ, Role.SUPERVISOR):
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "only a supervisor or HQ assigns tasks")
    now = clock.now()
    with transaction(session_factory) as session:
        guide = session.scalar(sa.select(Staff).where(Staff.staff_no == staff_no))
        if guide is None:
            raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"no staff member {staff_no!r}")
        tasks.check_may_see_guide(session, viewer=viewer, guide_id=guide.id)
        _check_owned(session, guide_id=guide.id, member_ids=member_ids, staff_no=staff_no)
        return tasks.create_guide_task(
            session, kind=kind, title=title, guide_id=guide.id, member_ids=member_ids,
            due_at=due_at, source="supervisor", body=body, now=now, created_by=viewer.actor,
            source_key=source_key or f"supervisor:{viewer.actor}:{secrets.token_hex(8)}",
        )  # fmt: skip


def complete(
    *, session_factory: sessionmaker[Session], clock: Clock, viewer: Viewer, task_id: int
) -> tasks.GuideTaskRead:
    with transaction(session_factory) as session:
        return tasks.complete_task(session, task_id=task_id, viewer=viewer, now=clock.now())


def tick_member(
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    viewer: Viewer,
    task_id: int,
    member_id: int,
) -> tasks.GuideTaskRead:
    """One member of a task is done (the guide sent the message / made the call)."""
    with transaction(session_factory) as session:
        task = tasks.get_task(session, task_id=task_id, viewer=viewer)
        if not viewer.may_write:
            raise StaffError(StaffErrorCode.NOT_ALLOWED, "the analyst role is read-only")
        if task.status is not tasks.TaskStatus.OPEN:
            raise StaffError(StaffErrorCode.TASK_CLOSED, f"task {task_id} is {task.status}")
        if member_id not in {m.member_id for m in task.members}:
            raise StaffError(StaffErrorCode.UNKNOWN_MEMBER, f"member {member_id} is not on it")
        tasks.mark_member_done(
            session, member_id=member_id, now=clock.now(), task_id=task_id,
            result={"by": viewer.actor},
        )  # fmt: skip
        return tasks.get_task(session, task_id=task_id, viewer=viewer)


def _check_owned(session: Session, *, guide_id: int, member_ids: list[int], staff_no: str) -> None:
    if not member_ids:
        raise StaffError(StaffErrorCode.INVALID_TASK, "a task needs at least one member")
    owned = set(
        session.scalars(
            sa.select(MemberOwner.member_id).where(
                MemberOwner.guide_id == guide_id, MemberOwner.member_id.in_(member_ids)
            )
        )
    )
    strangers = sorted(set(member_ids) - owned)
    if strangers:
        raise StaffError(
            StaffErrorCode.UNKNOWN_MEMBER, f"members {strangers} are not {staff_no}'s customers"
        )
