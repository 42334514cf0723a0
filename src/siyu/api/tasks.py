"""HTTP API of the guide task centre: the caller's tasks, assigning, completing, ticking off.

A guide's key lists that guide's tasks; a supervisor's their region's; HQ every task
(siyu.staff.task_service decides).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from siyu.api.apikeys import viewer_of
from siyu.api.deps import SiyuDep
from siyu.api.staff import http_error
from siyu.staff import task_service
from siyu.staff.errors import StaffError
from siyu.staff.tasks import GuideTaskRead

router = APIRouter(prefix="/api/tasks", tags=["tasks"])
TaskId = Annotated[int, Path(ge=1, le=2**53)]
MemberId = Annotated[int, Path(ge=1, le=2**53)]


class TaskIn(BaseModel):
    staff_no: Annotated[str, Field(min_length=1, max_length=64)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Annotated[str, Field(pattern="^(send_message|call|follow_up)$")] = "follow_up"
    member_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**53)]], Field(min_length=1)]
    due_at: datetime
    body: Annotated[str | None, Field(max_length=2000)] = None


def _out(task: GuideTaskRead) -> dict[str, Any]:
    return {
        "id": task.id, "kind": task.kind.value, "title": task.title, "body": task.body,
        "guide_id": task.guide_id, "store_id": task.store_id, "due_at": task.due_at,
        "status": task.status.value, "source": task.source.value, "done_at": task.done_at,
        "members": [
            {"member_id": m.member_id, "status": m.status.value, "done_at": m.done_at}
            for m in task.members
        ],
    }  # fmt: skip


@router.get("")
def list_tasks(request: Request, siyu: SiyuDep, day: date | None = None) -> list[dict[str, Any]]:
    """Open tasks due by the end of `day` (default today) and those done that day."""
    found = task_service.tasks_in_scope(
        session_factory=siyu.session_factory, viewer=viewer_of(request), now=siyu.clock.now(),
        tz=siyu.settings.tz, day=day,
    )  # fmt: skip
    return [_out(t) for t in found]


@router.post("", status_code=201)
def assign(body: TaskIn, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    if body.due_at.tzinfo is None:
        body.due_at = body.due_at.replace(tzinfo=siyu.settings.tz)
    try:
        task = task_service.assign_task(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            **body.model_dump(),
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return _out(task)


@router.get("/{task_id}")
def get_task(task_id: TaskId, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    try:
        task = task_service.get(
            session_factory=siyu.session_factory, viewer=viewer_of(request), task_id=task_id
        )
    except StaffError as error:
        raise http_error(error) from error
    return _out(task)


@router.post("/{task_id}/complete")
def complete(task_id: TaskId, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    try:
        task = task_service.complete(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            task_id=task_id,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return _out(task)


@router.post("/{task_id}/members/{member_id}/done")
def member_done(
    task_id: TaskId, member_id: MemberId, request: Request, siyu: SiyuDep
) -> dict[str, Any]:
    try:
        task = task_service.tick_member(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            task_id=task_id, member_id=member_id,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return _out(task)
