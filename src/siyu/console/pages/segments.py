"""Console pages of segments: the list, the builder (visual editor + JSON, live count), details.

Decisions:
- The builder's live count is a small hand-written script that POSTs the DSL to
  `/console/segments/preview` (the same function as `POST /api/segments/preview`, but behind
  the console session and its CSRF header, since a signed-in console user holds no API key).
- Segments span every store, so guides do not see these pages; analysts read, HQ and
  supervisors save, refresh and delete. Samples show masked names only, never contacts.
- Opening the builder syncs the warehouse (incremental); the live counts then sync again at
  most every `LIVE_SYNC_SECONDS` (30 s) per process, so a builder left open sees new data
  without every keystroke paying for a sync.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from siyu.access.schemas import Role
from siyu.api import segments as segments_api
from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.db import transaction
from siyu.segments import refresh as segments_refresh
from siyu.segments import service as segments_service
from siyu.segments.dsl import ATTRIBUTES, CouponState, Op
from siyu.segments.errors import SegmentDefinitionError, SegmentError
from siyu.segments.schemas import ExportFormat, Schedule
from siyu.segments.traits import LIFECYCLE_STAGES, RFM_CLASSES

router = APIRouter(prefix="/console/segments", tags=["console"], include_in_schema=False)
READERS = frozenset({Role.HQ, Role.SUPERVISOR, Role.ANALYST})
Reader = require_role(*READERS)
Editor = require_role(Role.HQ, Role.SUPERVISOR)
nav = [
    NavEntry(section="Segments", label="Segments", path="/console/segments", roles=READERS),
    NavEntry(
        section="Segments",
        label="New segment",
        path="/console/segments/new",
        roles=frozenset({Role.HQ, Role.SUPERVISOR}),
        order=110,
    ),
]
EMPTY: dict[str, Any] = {"all": []}
SCHEDULES = [s.value for s in Schedule]
# What the builder's selects offer; the DSL validates again on every preview and save.
VOCAB = {
    "attributes": list(ATTRIBUTES),
    "attr_ops": [o.value for o in Op if o not in (Op.HAS, Op.NOT_HAS)],
    "number_ops": [o.value for o in (Op.GTE, Op.GT, Op.EQ, Op.NE, Op.LTE, Op.LT, Op.BETWEEN)],
    "lifecycle": list(LIFECYCLE_STAGES),
    "rfm": list(RFM_CLASSES),
    "coupon_states": [s.value for s in CouponState],
}


@router.get("", dependencies=[Reader])
def segment_list(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    with siyu.session_factory() as db:
        segments = segments_service.get_all(db_session=db)
    context = {"segments": segments, "can_edit": user.role != Role.ANALYST}
    return render(request, "segments/list.html", context)


@router.get("/new", dependencies=[Editor])
def new_segment(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    segments_api.sync_warehouse(siyu)
    form = {"name": "", "description": "", "schedule": "daily", "definition": EMPTY}
    return _builder(request, form=form, existing=False)


@router.get("/{name}/edit", dependencies=[Editor])
def edit_segment(request: Request, siyu: SiyuDep, user: CurrentUser, name: str) -> HTMLResponse:
    segment = _get(siyu, name)
    segments_api.sync_warehouse(siyu)
    form = {
        "name": segment.name,
        "description": segment.description,
        "schedule": segment.schedule.value,
        "definition": segment.definition,
    }
    return _builder(request, form=form, existing=True)


def _builder(
    request: Request,
    *,
    form: dict[str, Any],
    existing: bool,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    text = json.dumps(form["definition"], ensure_ascii=False, indent=2)
    context = {
        "form": form,
        "definition_text": text,
        "existing": existing,
        "errors": errors or [],
        "schedules": SCHEDULES,
        "vocab": VOCAB,
    }
    response = render(request, "segments/builder.html", context)
    response.status_code = status_code
    return response


@router.post("/preview", dependencies=[CsrfChecked, Reader])
async def preview(request: Request, siyu: SiyuDep, user: CurrentUser) -> JSONResponse:
    """The builder's live count: {count, sample, elapsed_ms}, or 422 with the problems."""
    try:
        body = segments_api.PreviewRequest.model_validate(await request.json())
    except ValueError as error:
        return JSONResponse({"problems": [f"$: {error}"]}, status_code=422)
    try:
        segments_api.sync_warehouse_throttled(siyu)
        return JSONResponse(segments_api.preview(siyu, body, sync=False))
    except HTTPException as error:
        detail = error.detail if isinstance(error.detail, dict) else {"message": error.detail}
        problems = detail.get("problems") or [detail.get("message", "invalid definition")]
        return JSONResponse({"problems": problems}, status_code=error.status_code)


@router.post("", dependencies=[CsrfChecked, Editor])
def save(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: Annotated[str, Form()],
    definition: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
    schedule: Annotated[Schedule, Form()] = Schedule.DAILY,
    existing: Annotated[str, Form()] = "",
) -> Response:
    form: dict[str, Any] = {"name": name, "description": description, "schedule": schedule.value}
    try:
        parsed = json.loads(definition)
    except json.JSONDecodeError as error:
        form["definition"] = EMPTY
        return _builder(request, form=form, existing=bool(existing), errors=[f"$: {error}"],
                        status_code=422)  # fmt: skip
    form["definition"] = parsed
    try:
        with transaction(siyu.session_factory) as db:
            if not existing:
                segments_service.create_segment(
                    db_session=db, name=name, definition=parsed, now=siyu.clock.now(),
                    owner=user.username, description=description, schedule=schedule,
                )  # fmt: skip
            else:
                segments_service.save_segment(
                    db_session=db, name=name, definition=parsed, now=siyu.clock.now(),
                    owner=user.username, description=description, schedule=schedule,
                )  # fmt: skip
    except SegmentError as error:
        problems = error.problems if isinstance(error, SegmentDefinitionError) else [str(error)]
        return _builder(request, form=form, existing=bool(existing), errors=problems,
                        status_code=422)  # fmt: skip
    return RedirectResponse(f"/console/segments/{name}?saved=1", status_code=303)


@router.get("/{name}", dependencies=[Reader])
def detail(request: Request, siyu: SiyuDep, user: CurrentUser, name: str) -> HTMLResponse:
    segment = _get(siyu, name)
    with siyu.session_factory() as db:
        history = segments_refresh.count_history(db_session=db, name=name)
        try:
            change = segments_refresh.segment_diff(db_session=db, name=name)
        except SegmentError:
            change = None
    tz = siyu.settings.tz
    labels = [p.taken_at.astimezone(tz).strftime("%m-%d %H:%M") for p in history]
    context = {
        "segment": segment,
        "definition_text": json.dumps(segment.definition, ensure_ascii=False, indent=2),
        "history": list(reversed(history)),
        "labels": labels,
        "counts": [{"name": "members", "values": [p.member_count for p in history]}],
        "moves": [
            {"name": "entered", "values": [p.entered_count for p in history]},
            {"name": "exited", "values": [p.exited_count for p in history]},
        ],
        "diff": change,
        "can_edit": user.role != Role.ANALYST,
        "saved": request.query_params.get("saved"),
    }
    return render(request, "segments/detail.html", context)


@router.post("/{name}/refresh", dependencies=[CsrfChecked, Editor])
def refresh(siyu: SiyuDep, user: CurrentUser, name: str) -> RedirectResponse:
    _get(siyu, name)
    segments_api.sync_warehouse(siyu)
    segments_refresh.refresh_segment(
        session_factory=siyu.session_factory,
        warehouse=siyu.segment_warehouse,
        name=name,
        now=siyu.clock.now(),
        force=True,
        timezone=siyu.settings.tz,
    )
    return RedirectResponse(f"/console/segments/{name}", status_code=303)


@router.post("/{name}/delete", dependencies=[CsrfChecked, Editor])
def delete(request: Request, siyu: SiyuDep, user: CurrentUser, name: str) -> Response:
    try:
        with transaction(siyu.session_factory) as db:
            segments_service.delete_segment(
                db_session=db, name=name, now=siyu.clock.now(), actor=user.username
            )
    except SegmentError as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return RedirectResponse("/console/segments", status_code=303)


@router.get("/{name}/export", dependencies=[Editor])
def export(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: str,
    format: Annotated[ExportFormat, Query()] = ExportFormat.CSV,
) -> Response:
    _get(siyu, name)
    return segments_api.export_segment(name, request, siyu, format=format, sync=True)


def _get(siyu: Siyu, name: str) -> Any:
    try:
        with siyu.session_factory() as db:
            return segments_service.get(db_session=db, name=name)
    except SegmentError as error:
        raise HTTPException(status_code=404, detail=str(error)) from error
