"""Guide task centre pages: "My tasks today" (phone-sized) with mark-done per member and task.

A guide sees their own tasks; a supervisor their region's; HQ every guide's (bounded list) —
siyu.staff.task_service decides. Member names on tasks are the guide's own customers and are
shown as the identity queries return them for this viewer (phones masked).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.access.schemas import Role
from siyu.access.scope import viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.identity import queries
from siyu.identity import service as identity_service
from siyu.identity.errors import IdentityError, IdentityErrorCode
from siyu.staff import directory, task_service
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
    may_assign = user.role in _ASSIGNERS
    guides = (
        [s for s in directory.list_staff(session_factory=siyu.session_factory, viewer=viewer)
         if s.role == "guide"] if may_assign else []
    )  # fmt: skip
    context = {
        "tasks": found, "names": names, "error": error,
        "open_count": sum(1 for t in found if t.status.value == "open"),
        "day": day or siyu.clock.now().astimezone(siyu.settings.tz).date(),
        "may_assign": may_assign, "guides": guides,
    }  # fmt: skip
    return render(request, "tasks/today.html", context)


_ASSIGNERS = (Role.HQ, Role.SUPERVISOR)


@router.post("/assign", dependencies=[CsrfChecked, require_role(*_ASSIGNERS)])
def assign_task(
    siyu: SiyuDep,
    user: CurrentUser,
    staff_no: Annotated[str, Form(min_length=1, max_length=64)],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[str, Form(pattern="^(send_message|call|follow_up)$")],
    due_on: Annotated[date, Form()],
    members: Annotated[str, Form(min_length=1, max_length=20000)],
    body: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    """A supervisor (their region) or HQ gives a guide a task about customers the guide owns;
    members are typed one per line as any identity (phone in any format, member number) or
    `id:N`. The task is due at the end of `due_on` in the business time zone."""
    try:
        member_ids = _members_of_lines(siyu, members)
        task = task_service.assign_task(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of_user(user),
            staff_no=staff_no.strip(), title=title, kind=kind, member_ids=member_ids,
            due_at=datetime.combine(due_on, time(23, 59), tzinfo=siyu.settings.tz),
            body=body.strip() or None,
        )  # fmt: skip
    except (StaffError, IdentityError) as error:
        return RedirectResponse(f"/console/tasks?error={quote(error.message)}", status_code=303)
    return RedirectResponse(f"/console/tasks?day={due_on}#task-{task.id}", status_code=303)


def _members_of_lines(siyu: SiyuDep, text: str) -> list[int]:
    found: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        identity = line.strip()
        if not identity:
            continue
        if identity.startswith("id:") and identity[3:].isdigit():
            member_id = int(identity[3:])
        else:
            try:
                member_id = identity_service.find_member_by_identity(
                    session_factory=siyu.session_factory, identity=identity
                )
            except IdentityError as error:
                raise IdentityError(error.code, f"line {number}: {error.message}") from error
        if member_id not in found:
            found.append(member_id)
    if not found:
        raise IdentityError(
            IdentityErrorCode.IDENTITY_NOT_UNDERSTOOD, "name at least one member, one per line"
        )
    return found


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
