"""Guide task centre: the single actions a guide finishes on the phone.

Tasks come from journeys and SOPs (through the `create_staff_task` journey action), from
supervisors and from WeCom (a mass message or moment a guide must confirm). Each task has one
guide, a due instant, a status (open → done | expired | cancelled) and the members it is about,
each with its own status, so a task completes automatically when the linked send/result event
has arrived for every member, or manually when the guide marks it done.

Decisions:
- `source_key` is UNIQUE: creating a task twice with the same key returns the first task
  (journey retries, replayed WeCom callbacks). The check is backed by the constraint: a
  concurrent duplicate insert is caught in a savepoint and the winner is returned.
- Marking a task done marks its still-pending members done (`by: manual`): the guide vouches
  for them. Expired and cancelled tasks cannot be completed any more.
- "Today" is the business-time-zone day of `now`: a guide's list is every open task due by the
  end of today (overdue included) plus the tasks done today.
- These functions take the caller's session and never commit (a journey step, a WeCom callback
  or an adapter's use case owns the transaction); the `*_task` use cases below that take a
  session factory commit once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.access.schemas import Role
from siyu.access.scope import Viewer
from siyu.audit import service as audit_service
from siyu.staff.errors import StaffError, StaffErrorCode
from siyu.staff.models import Staff, Store
from siyu.staff.models_guides import GuideTask, GuideTaskMember

_E = TypeVar("_E", bound=StrEnum)


class TaskKind(StrEnum):
    SEND_MESSAGE = "send_message"
    CALL = "call"
    MASS_MESSAGE = "mass_message"
    MOMENT = "moment"
    FOLLOW_UP = "follow_up"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class TaskSource(StrEnum):
    JOURNEY = "journey"
    SOP = "sop"
    SUPERVISOR = "supervisor"
    WECOM = "wecom"


class MemberTaskStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


@dataclass(frozen=True)
class TaskMember:
    member_id: int
    status: MemberTaskStatus
    done_at: datetime | None


@dataclass(frozen=True)
class GuideTaskRead:
    id: int
    kind: TaskKind
    title: str
    body: str | None
    guide_id: int
    store_id: int | None
    due_at: datetime
    status: TaskStatus
    source: TaskSource
    source_key: str
    payload: dict[str, Any] | None
    result: dict[str, Any] | None
    created_at: datetime
    done_at: datetime | None
    members: tuple[TaskMember, ...]

    @property
    def members_done(self) -> int:
        return sum(1 for m in self.members if m.status is MemberTaskStatus.DONE)


def create_guide_task(
    session: Session,
    *,
    kind: str,
    title: str,
    guide_id: int,
    member_ids: Iterable[int],
    due_at: datetime,
    source: str,
    source_key: str,
    body: str | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime,
    created_by: str = "system",
) -> GuideTaskRead:
    """Give a guide a task about these members, once per `source_key`."""
    existing = session.scalar(select(GuideTask).where(GuideTask.source_key == source_key))
    if existing is not None:
        return _read(session, existing)
    guide = _active_guide(session, guide_id)
    task = GuideTask(
        kind=_valid(TaskKind, kind, "kind").value,
        title=_valid_title(title),
        body=body,
        guide_id=guide.id,
        store_id=guide.store_id,
        due_at=due_at,
        status=TaskStatus.OPEN.value,
        source=_valid(TaskSource, source, "source").value,
        source_key=source_key,
        payload=payload,
        created_by=created_by,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:
        # A concurrent creator with the same key won; return its task.
        winner = session.scalar(select(GuideTask).where(GuideTask.source_key == source_key))
        if winner is None:
            raise
        return _read(session, winner)
    add_task_members(session, task_id=task.id, member_ids=member_ids)
    return _read(session, task)


def add_task_members(session: Session, *, task_id: int, member_ids: Iterable[int]) -> int:
    """Attach members to a task; members already on it are left as they are."""
    present = set(
        session.scalars(select(GuideTaskMember.member_id).where(GuideTaskMember.task_id == task_id))
    )
    added = sorted(set(member_ids) - present)
    session.add_all(
        GuideTaskMember(task_id=task_id, member_id=m, status=MemberTaskStatus.PENDING.value)
        for m in added
    )
    session.flush()
    return len(added)


def complete_task(
    session: Session,
    *,
    task_id: int,
    viewer: Viewer,
    now: datetime,
    result: dict[str, Any] | None = None,
) -> GuideTaskRead:
    """The guide (or their supervisor, or HQ) marks the task done; pending members with it."""
    task = _task_for_update(session, task_id=task_id, viewer=viewer)
    if task.status == TaskStatus.DONE:
        return _read(session, task)
    if task.status != TaskStatus.OPEN:
        raise StaffError(
            StaffErrorCode.TASK_CLOSED, f"task {task_id} is {task.status} and cannot be completed"
        )
    session.execute(
        update(GuideTaskMember)
        .where(GuideTaskMember.task_id == task.id, GuideTaskMember.status == "pending")
        .values(status=MemberTaskStatus.DONE.value, done_at=now, result={"by": "manual"})
    )
    _close(task, status=TaskStatus.DONE, now=now, result={"by": viewer.actor, **(result or {})})
    audit_service.record(
        db_session=session,
        now=now,
        actor=viewer.actor,
        action="task.complete",
        entity_type="guide_task",
        entity_id=task.id,
    )
    return _read(session, task)


def cancel_task(session: Session, *, task_id: int, viewer: Viewer, now: datetime) -> GuideTaskRead:
    """A supervisor or HQ withdraws an open task."""
    if viewer.role not in (Role.HQ, Role.SUPERVISOR):
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "only a supervisor or HQ cancels tasks")
    task = _task_for_update(session, task_id=task_id, viewer=viewer)
    if task.status != TaskStatus.OPEN:
        raise StaffError(StaffErrorCode.TASK_CLOSED, f"task {task_id} is {task.status}")
    _close(task, status=TaskStatus.CANCELLED, now=now, result={"by": viewer.actor})
    return _read(session, task)


def mark_member_done(
    session: Session,
    *,
    member_id: int,
    now: datetime,
    guide_id: int | None = None,
    kinds: Sequence[str] | None = None,
    task_id: int | None = None,
    result: dict[str, Any] | None = None,
) -> list[int]:
    """A send/result event arrived for this member: tick them off on the matching open tasks.

    Returns the ids of the tasks this completed (every member done → task done).
    """
    query = (
        select(GuideTaskMember)
        .join(GuideTask, GuideTask.id == GuideTaskMember.task_id)
        .where(
            GuideTaskMember.member_id == member_id,
            GuideTaskMember.status == MemberTaskStatus.PENDING.value,
            GuideTask.status == TaskStatus.OPEN.value,
        )
    )
    if guide_id is not None:
        query = query.where(GuideTask.guide_id == guide_id)
    if kinds:
        query = query.where(GuideTask.kind.in_(list(kinds)))
    if task_id is not None:
        query = query.where(GuideTask.id == task_id)
    completed: list[int] = []
    for link in session.scalars(query.order_by(GuideTaskMember.task_id)).all():
        link.status = MemberTaskStatus.DONE.value
        link.done_at = now
        link.result = {"by": "event", **(result or {})}
        session.flush()
        if _pending_count(session, link.task_id) == 0:
            task = session.get_one(GuideTask, link.task_id)
            _close(task, status=TaskStatus.DONE, now=now, result={"by": "event"})
            completed.append(task.id)
    return completed


def list_tasks_for_guide(
    session: Session,
    *,
    guide_id: int,
    viewer: Viewer,
    now: datetime,
    tz: ZoneInfo,
    day: date | None = None,
) -> list[GuideTaskRead]:
    """A guide's tasks for a day: open ones due by its end (overdue too) and those done that day."""
    _check_may_see_guide(session, viewer=viewer, guide_id=guide_id)
    day = day or now.astimezone(tz).date()
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = start + timedelta(days=1)
    open_due = (GuideTask.status == TaskStatus.OPEN.value) & (GuideTask.due_at < end)
    done_today = (
        (GuideTask.status == TaskStatus.DONE.value)
        & (GuideTask.done_at >= start)
        & (GuideTask.done_at < end)
    )
    rows = session.scalars(
        select(GuideTask)
        .where(GuideTask.guide_id == guide_id, open_due | done_today)
        .order_by(GuideTask.status.desc(), GuideTask.due_at, GuideTask.id)
    ).all()
    return [_read(session, row) for row in rows]


def get_task(session: Session, *, task_id: int, viewer: Viewer) -> GuideTaskRead:
    """One task, if the viewer may see its guide's work."""
    task = session.get(GuideTask, task_id)
    if task is None:
        raise StaffError(StaffErrorCode.UNKNOWN_TASK, f"no task {task_id}")
    _check_may_see_guide(session, viewer=viewer, guide_id=task.guide_id)
    return _read(session, task)


def expire_overdue(session: Session, *, now: datetime) -> int:
    """Worker hook: open tasks past their due instant become expired. Returns how many."""
    result = session.execute(
        update(GuideTask)
        .where(GuideTask.status == TaskStatus.OPEN.value, GuideTask.due_at < now)
        .values(status=TaskStatus.EXPIRED.value, done_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def check_may_see_guide(session: Session, *, viewer: Viewer, guide_id: int) -> None:
    """Refuse (NOT_ALLOWED) unless the viewer may see this guide's work."""
    _check_may_see_guide(session, viewer=viewer, guide_id=guide_id)


def _check_may_see_guide(session: Session, *, viewer: Viewer, guide_id: int) -> None:
    if viewer.sees_everything:
        return
    if viewer.role is Role.GUIDE and viewer.staff_id == guide_id:
        return
    if viewer.role is Role.SUPERVISOR and viewer.region is not None:
        region = session.scalar(
            select(Store.region).join(Staff, Staff.store_id == Store.id).where(Staff.id == guide_id)
        )
        if region == viewer.region:
            return
    raise StaffError(StaffErrorCode.NOT_ALLOWED, "these tasks belong to another guide")


def _task_for_update(session: Session, *, task_id: int, viewer: Viewer) -> GuideTask:
    if not viewer.may_write:
        raise StaffError(StaffErrorCode.NOT_ALLOWED, "the analyst role is read-only")
    task = session.scalar(select(GuideTask).where(GuideTask.id == task_id).with_for_update())
    if task is None:
        raise StaffError(StaffErrorCode.UNKNOWN_TASK, f"no task {task_id}")
    _check_may_see_guide(session, viewer=viewer, guide_id=task.guide_id)
    return task


def _close(task: GuideTask, *, status: TaskStatus, now: datetime, result: dict[str, Any]) -> None:
    task.status = status.value
    task.done_at = now if status is TaskStatus.DONE else None
    task.result = result


def _pending_count(session: Session, task_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(GuideTaskMember)
            .where(GuideTaskMember.task_id == task_id, GuideTaskMember.status == "pending")
        )
        or 0
    )


def _active_guide(session: Session, guide_id: int) -> Staff:
    guide = session.get(Staff, guide_id)
    if guide is None or not guide.active:
        raise StaffError(StaffErrorCode.UNKNOWN_STAFF, f"no active staff member with id {guide_id}")
    return guide


def _valid(enum: type[_E], value: str, field: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise StaffError(
            StaffErrorCode.INVALID_TASK, f"task {field} {value!r}: use one of {allowed}"
        ) from None


def _valid_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > 200:
        raise StaffError(StaffErrorCode.INVALID_TASK, "task title: 1-200 characters")
    return title


def _read(session: Session, task: GuideTask) -> GuideTaskRead:
    links = session.scalars(
        select(GuideTaskMember)
        .where(GuideTaskMember.task_id == task.id)
        .order_by(GuideTaskMember.member_id)
    ).all()
    return GuideTaskRead(
        id=task.id,
        kind=TaskKind(task.kind),
        title=task.title,
        body=task.body,
        guide_id=task.guide_id,
        store_id=task.store_id,
        due_at=task.due_at,
        status=TaskStatus(task.status),
        source=TaskSource(task.source),
        source_key=task.source_key,
        payload=task.payload,
        result=task.result,
        created_at=task.created_at,
        done_at=task.done_at,
        members=tuple(
            TaskMember(member_id=m.member_id, status=MemberTaskStatus(m.status), done_at=m.done_at)
            for m in links
        ),
    )
