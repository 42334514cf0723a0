"""Staff pages: a guide's "My customers" and "My ranking", the supervisor's region dashboard
(task completion, new customers, conversions and GMV attributed per guide and store) and PK
contests. HQ sees every region. The period defaults to the current month to date.
"""

from __future__ import annotations

from datetime import date
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
from siyu.staff import directory, leaderboards
from siyu.staff.errors import StaffError

router = APIRouter(prefix="/console/staff")
_LEADS = frozenset({Role.HQ, Role.SUPERVISOR, Role.ANALYST})
nav = [
    NavEntry(section="Staff", label="My customers", path="/console/staff/customers", order=10,
             roles=frozenset({Role.GUIDE})),
    NavEntry(section="Staff", label="My ranking", path="/console/staff/ranking", order=20,
             roles=frozenset({Role.GUIDE})),
    NavEntry(section="Staff", label="Region", path="/console/staff/dashboard", order=30,
             roles=_LEADS),
    NavEntry(section="Staff", label="Contests", path="/console/staff/contests", order=40),
]  # fmt: skip
Day = Annotated[date | None, Query()]
Metric = Annotated[str, Query(pattern="^(" + "|".join(leaderboards.METRICS) + ")$")]


def _period(siyu: SiyuDep, start: date | None, end: date | None) -> tuple[date, date]:
    today = siyu.clock.now().astimezone(siyu.settings.tz).date()
    end = end or today
    return (start or end.replace(day=1)), end


@router.get("/customers")
def my_customers(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=128)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    results = queries.search_members(
        session_factory=siyu.session_factory, query=q, page=page, page_size=25,
        viewer=viewer_of_user(user),
    )  # fmt: skip
    return render(request, "staff/customers.html", {"q": q or "", "results": results})


@router.get("/ranking")
def my_ranking(
    request: Request, siyu: SiyuDep, user: CurrentUser, metric: Metric = "gmv"
) -> HTMLResponse:
    start, end = _period(siyu, None, None)
    board = leaderboards.performance(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse,
        viewer=viewer_of_user(user), level="guide", start=start, end=end, tz=siyu.settings.tz,
        metric=metric,
    )  # fmt: skip
    mine = directory.staff_no_of(session_factory=siyu.session_factory, staff_id=user.staff_id)
    me = next((r for r in board if r.key == mine), None)
    context = {"board": board, "me": me, "metric": metric, "start": start, "end": end,
               "metrics": leaderboards.METRICS}  # fmt: skip
    return render(request, "staff/ranking.html", context)


@router.get("/dashboard", dependencies=[require_role(*_LEADS)])
def dashboard(
    request: Request, siyu: SiyuDep, user: CurrentUser, start: Day = None, end: Day = None
) -> HTMLResponse:
    start, end = _period(siyu, start, end)
    viewer = viewer_of_user(user)
    try:
        guides, stores = (
            leaderboards.performance(
                session_factory=siyu.session_factory, warehouse=siyu.warehouse, viewer=viewer,
                level=level, start=start, end=end, tz=siyu.settings.tz,
            )
            for level in ("guide", "store")
        )  # fmt: skip
    except StaffError as error:
        return render(request, "error.html", {"title": "Bad period", "message": error.message},
                      status_code=422)  # fmt: skip
    context = {"guides": guides, "stores": stores, "start": start, "end": end,
               "region": viewer.region if viewer.role is Role.SUPERVISOR else None}  # fmt: skip
    return render(request, "staff/dashboard.html", context)


@router.get("/contests")
def contests(
    request: Request, siyu: SiyuDep, user: CurrentUser, error: Annotated[str | None, Query(
        max_length=300)] = None
) -> HTMLResponse:  # fmt: skip
    found = leaderboards.list_contests(session_factory=siyu.session_factory, tz=siyu.settings.tz)
    context = {"contests": found, "error": error, "metrics": leaderboards.METRICS,
               "may_create": user.role in (Role.HQ, Role.SUPERVISOR)}  # fmt: skip
    return render(request, "staff/contests.html", context)


@router.post("/contests", dependencies=[CsrfChecked, require_role(Role.HQ, Role.SUPERVISOR)])
def create_contest(
    siyu: SiyuDep,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=128)],
    level: Annotated[str, Form(pattern="^(guide|store)$")],
    metric: Annotated[str, Form(max_length=32)],
    participants: Annotated[str, Form(max_length=2000)],
    starts_on: Annotated[date, Form()],
    ends_on: Annotated[date, Form()],
) -> RedirectResponse:
    try:
        made = leaderboards.create_contest(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of_user(user),
            name=name, level=level, metric=metric, starts_on=starts_on, ends_on=ends_on,
            participants=[p.strip() for p in participants.replace("\n", ",").split(",")
                          if p.strip()], tz=siyu.settings.tz,
        )  # fmt: skip
    except StaffError as error:
        return RedirectResponse(f"/console/staff/contests?error={quote(error.message)}", 303)
    return RedirectResponse(f"/console/staff/contests/{made.id}", status_code=303)


@router.get("/contests/{contest_id}")
def contest(request: Request, contest_id: int, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    try:
        found, board = leaderboards.contest_leaderboard(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse,
            viewer=viewer_of_user(user), contest_id=contest_id, tz=siyu.settings.tz,
        )  # fmt: skip
    except StaffError as error:
        return render(request, "error.html", {"title": "Contest not found",
                      "message": error.message}, status_code=404)  # fmt: skip
    return render(request, "staff/contest.html", {"contest": found, "board": board})
