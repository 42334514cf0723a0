"""HTTP API of people: stores, staff (join/leave), member owners (reassign) and leaderboards.

Every route takes the caller's Viewer from the API key (`viewer_of`); scoping and role checks
live in siyu.staff. Leaderboards are under /api/leaderboards and need `read:staff`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from siyu.api.apikeys import viewer_of
from siyu.api.deps import SiyuDep
from siyu.staff import directory, leaderboards
from siyu.staff.errors import StaffError, StaffErrorCode

router = APIRouter(tags=["staff"])
MemberId = Annotated[int, Path(ge=1, le=2**53)]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
StaffNo = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
_STATUS = {
    StaffErrorCode.UNKNOWN_STAFF: 404, StaffErrorCode.UNKNOWN_STORE: 404,
    StaffErrorCode.UNKNOWN_MEMBER: 404, StaffErrorCode.UNKNOWN_TASK: 404,
    StaffErrorCode.NOT_ALLOWED: 403, StaffErrorCode.TASK_CLOSED: 409,
    StaffErrorCode.NO_SUCCESSOR: 409,
}  # fmt: skip


def http_error(error: StaffError) -> HTTPException:
    return HTTPException(
        _STATUS.get(error.code, 422), {"code": error.code.value, "message": error.message}
    )


class StoreIn(BaseModel):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=128)]
    city: Annotated[str | None, Field(max_length=64)] = None
    region: Annotated[str | None, Field(max_length=64)] = None
    kind: Annotated[str, Field(pattern="^(direct|franchise|online)$")] = "direct"


class StaffIn(BaseModel):
    staff_no: StaffNo
    name: Annotated[str, Field(min_length=1, max_length=128)]
    role: Annotated[str, Field(pattern="^(guide|manager|supervisor|hq)$")] = "guide"
    store_code: Code | None = None


class LeaveIn(BaseModel):
    to: StaffNo | None = Field(None, description="successor; omit to spread over the store")


class ReassignIn(BaseModel):
    staff_no: StaffNo


class ContestIn(BaseModel):
    name: Annotated[str, Field(min_length=2, max_length=128)]
    level: Annotated[str, Field(pattern="^(guide|store)$")]
    metric: Annotated[str, Field(pattern="^(" + "|".join(leaderboards.METRICS) + ")$")]
    participants: Annotated[list[StaffNo], Field(min_length=2, max_length=50)]
    starts_on: date
    ends_on: date


class Standing(BaseModel):
    rank: int
    key: str
    name: str
    store: str | None
    region: str | None
    gmv: Decimal
    orders: int
    conversions: int
    new_customers: int
    tasks_done: int
    tasks_total: int
    task_completion: float


def _standing(p: leaderboards.Performance) -> Standing:
    return Standing(**{k: getattr(p, k) for k in Standing.model_fields})


@router.get("/api/staff/stores")
def list_stores(request: Request, siyu: SiyuDep) -> list[dict[str, Any]]:
    rows = directory.list_stores(session_factory=siyu.session_factory, viewer=viewer_of(request))
    return [r.__dict__ for r in rows]


@router.put("/api/staff/stores")
def upsert_store(body: StoreIn, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    try:
        row = directory.upsert_store(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            **body.model_dump(),
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return row.__dict__


@router.get("/api/staff")
def list_staff(request: Request, siyu: SiyuDep, include_left: bool = False) -> list[dict[str, Any]]:
    rows = directory.list_staff(
        session_factory=siyu.session_factory, viewer=viewer_of(request), include_left=include_left
    )
    return [r.__dict__ for r in rows]


@router.put("/api/staff")
def upsert_staff(body: StaffIn, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    """A join (or an update); a leaver put back is active again."""
    try:
        row = directory.upsert_staff(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            **body.model_dump(),
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return row.__dict__


@router.post("/api/staff/{staff_no}/leave")
def leave(
    staff_no: Annotated[str, Path(max_length=64)], body: LeaveIn, request: Request, siyu: SiyuDep
) -> dict[str, int]:
    try:
        return directory.staff_leaves(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            staff_no=staff_no, to_staff_no=body.to,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error


@router.get("/api/staff/owners/{member_id}")
def owner(member_id: MemberId, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    try:
        return directory.owner_with_history(
            session_factory=siyu.session_factory, viewer=viewer_of(request), member_id=member_id
        )
    except StaffError as error:
        raise http_error(error) from error


@router.post("/api/staff/owners/{member_id}")
def reassign(
    member_id: MemberId, body: ReassignIn, request: Request, siyu: SiyuDep
) -> dict[str, Any]:
    try:
        found = directory.reassign_member(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            member_id=member_id, staff_no=body.staff_no,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return found.__dict__


@router.get("/api/leaderboards")
def leaderboard(
    request: Request,
    siyu: SiyuDep,
    start: date,
    end: date,
    level: Annotated[str, Query(pattern="^(guide|store)$")] = "guide",
    metric: Annotated[str, Query(pattern="^(" + "|".join(leaderboards.METRICS) + ")$")] = "gmv",
) -> list[Standing]:
    """Guides or stores in the caller's scope ranked by a metric over [start, end]."""
    try:
        rows = leaderboards.performance(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse,
            viewer=viewer_of(request), level=level, start=start, end=end,
            tz=siyu.settings.tz, metric=metric,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return [_standing(r) for r in rows]


@router.get("/api/leaderboards/contests")
def contests(siyu: SiyuDep) -> list[dict[str, Any]]:
    found = leaderboards.list_contests(session_factory=siyu.session_factory, tz=siyu.settings.tz)
    return [{**c.__dict__, "participants": list(c.participants)} for c in found]


@router.post("/api/leaderboards/contests", status_code=201)
def create_contest(body: ContestIn, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    try:
        found = leaderboards.create_contest(
            session_factory=siyu.session_factory, clock=siyu.clock, viewer=viewer_of(request),
            tz=siyu.settings.tz, **body.model_dump(),
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    return {**found.__dict__, "participants": list(found.participants)}


@router.get("/api/leaderboards/contests/{contest_id}")
def contest(
    contest_id: Annotated[int, Path(ge=1, le=2**53)], request: Request, siyu: SiyuDep
) -> dict[str, Any]:
    try:
        found, board = leaderboards.contest_leaderboard(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse,
            viewer=viewer_of(request), contest_id=contest_id, tz=siyu.settings.tz,
        )  # fmt: skip
    except StaffError as error:
        raise http_error(error) from error
    contest_out = {**found.__dict__, "participants": list(found.participants)}
    return {"contest": contest_out, "standings": [_standing(r) for r in board]}
