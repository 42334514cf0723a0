"""Guide task centre pages: "My tasks today" (phone-sized) with mark-done per member and task.

A guide sees their own tasks; a supervisor their region's; HQ every guide's (bounded list) —
siyu.staff.task_service decides. Member names on tasks are the guide's own customers and are
shown as the identity queries return them for this viewer (phones masked).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.access.scope import viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.console.auth import CsrfChecked, CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.identity import queries
from siyu.staff import task_service
from siyu.staff.errors import StaffError

router = APIRouter(prefix="/console/tasks")
nav = [NavEntry(section="Staff", label="My tasks", path="/console/tasks", order=0)]


@router.get("")
def my_tasks(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    day: Annotated[date | None, Query()] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    viewer = viewer_of_user(user)
    found = task_service.tasks_in_scope(
        session_factory=siyu.session_factory, viewer=viewer, now=siyu.clock.now(),
        tz=siyu.settings.tz, day=day,
    )  # fmt: skip
    ids = sorted({m.member_id for t in found for m in t.members})
    names = queries.summaries_of(
        session_factory=siyu.session_factory, member_ids=ids, viewer=viewer
    )
    context = {
        "tasks": found, "names": names, "error": error,
        "open_count": sum(1 for t in found if t.status.value == "open"),
        "day": day or siyu.clock.now().astimezone(siyu.settings.tz).date(),
    }  # fmt: skip
    return render(request, "tasks/today.html", context)


@router.post("/{task_id}/done", dependencies=[CsrfChecked])
def mark_task_done(task_id: int, siyu: SiyuDep, user: CurrentUser) -> RedirectResponse:
    try:
        task_service.complete(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of_user(user),
            task_id=task_id,
        )  # fmt: skip
    except StaffError as error:
        return RedirectResponse(f"/console/tasks?error={error.code.value}", status_code=303)
    return RedirectResponse(f"/console/tasks#task-{task_id}", status_code=303)


@router.post("/{task_id}/members/{member_id}/done", dependencies=[CsrfChecked])
def mark_member_done(
    task_id: int, member_id: int, siyu: SiyuDep, user: CurrentUser
) -> RedirectResponse:
    try:
        task_service.tick_member(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of_user(user),
            task_id=task_id, member_id=member_id,
        )  # fmt: skip
    except StaffError as error:
        return RedirectResponse(f"/console/tasks?error={error.code.value}", status_code=303)
    return RedirectResponse(f"/console/tasks#task-{task_id}", status_code=303)
