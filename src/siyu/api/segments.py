"""HTTP API of segments: preview (count + masked sample), saved-segment CRUD, refresh, diff, export.

Decisions:
- Preview is `POST /api/segments/preview` (the DSL as a JSON body; by the method rule of
  `api/apikeys.py` it needs `write:segments` although it changes nothing), and the same answer
  is `GET /api/segments/preview?definition=<json>` for read-only keys.
- Evaluation does not sync the warehouse unless `sync=true` (the worker keeps it current);
  refresh and export sync by default because they are what journeys and files are built on.
- Guide keys are refused (403): a segment spans every store, a guide's scope is own members.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from siyu.access.schemas import Role
from siyu.api.apikeys import viewer_of
from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.privacy.exports import audit_export
from siyu.segments import refresh as segments_refresh
from siyu.segments import service as segments_service
from siyu.segments.errors import SegmentDefinitionError, SegmentError, SegmentErrorCode
from siyu.segments.schemas import ExportFormat, Schedule
from siyu.warehouse.sync import sync_all

router = APIRouter(prefix="/api/segments", tags=["segments"])
_STATUS = {
    SegmentErrorCode.NOT_FOUND: 404,
    SegmentErrorCode.NAME_TAKEN: 409,
    SegmentErrorCode.IN_USE: 409,
    SegmentErrorCode.NO_SNAPSHOT: 409,
}
_MEDIA = {ExportFormat.CSV: "text/csv", ExportFormat.PARQUET: "application/vnd.apache.parquet"}


class PreviewRequest(BaseModel):
    definition: dict[str, Any]
    now: datetime | None = Field(default=None, description="Evaluation instant; default now.")
    sample_size: Annotated[int, Field(ge=0, le=100)] = 10


class SegmentBody(BaseModel):
    definition: dict[str, Any]
    description: Annotated[str | None, Field(max_length=2000)] = None
    schedule: Schedule | None = None


class NewSegment(SegmentBody):
    name: Annotated[str, Field(min_length=1, max_length=128)]


def http_error(error: SegmentError) -> HTTPException:
    detail: dict[str, Any] = {"code": error.code.value, "message": str(error)}
    if isinstance(error, SegmentDefinitionError):
        detail["problems"] = error.problems
    return HTTPException(status_code=_STATUS.get(error.code, 422), detail=detail)


def _actor(request: Request) -> str:
    viewer = viewer_of(request)
    if viewer.role == Role.GUIDE:
        raise HTTPException(status_code=403, detail="segments span every store: not for guides")
    return viewer.actor


def _exporter(request: Request) -> str:
    """The console user behind a console export, else the API key's name (audit trail)."""
    user = getattr(request.state, "user", None)
    return f"console:{user.username}" if user is not None else viewer_of(request).actor


def sync_warehouse(siyu: Siyu) -> None:
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz)
    _last_sync[id(siyu)] = time.monotonic()


# When each process-wide Siyu last synced, so live previews sync at most every N seconds.
_last_sync: dict[int, float] = {}
LIVE_SYNC_SECONDS = 30.0


def sync_warehouse_throttled(siyu: Siyu, *, every: float = LIVE_SYNC_SECONDS) -> bool:
    """Sync unless this process synced less than `every` seconds ago; returns whether it did."""
    last = _last_sync.get(id(siyu))
    if last is not None and time.monotonic() - last < every:
        return False
    sync_warehouse(siyu)
    return True


def preview(siyu: Siyu, body: PreviewRequest, *, sync: bool) -> dict[str, Any]:
    """Count and masked sample; shared by the API and the console builder's live count."""
    if sync:
        sync_warehouse(siyu)
    try:
        with siyu.session_factory() as db:
            result = segments_service.preview_segment(
                warehouse=siyu.segment_warehouse,
                definition=body.definition,
                now=body.now or siyu.clock.now(),
                session=db,
                timezone=siyu.settings.tz,
                sample_size=body.sample_size,
            )
    except SegmentError as error:
        raise http_error(error) from error
    sample = [vars(member) for member in result.sample]
    return {
        "count": result.count,
        "sample": sample,
        "elapsed_ms": result.elapsed_ms,
        "answered_by": result.answered_by,
    }


@router.post("/preview")
def post_preview(
    body: PreviewRequest, request: Request, siyu: SiyuDep, sync: bool = False
) -> dict[str, Any]:
    """The count and a masked sample of a DSL definition (nothing is saved)."""
    _actor(request)
    return preview(siyu, body, sync=sync)


@router.get("/preview")
def get_preview(
    request: Request,
    siyu: SiyuDep,
    definition: Annotated[str, Query(description="The DSL as JSON text.")],
    sample_size: Annotated[int, Query(ge=0, le=100)] = 10,
    sync: bool = False,
) -> dict[str, Any]:
    """As POST /preview, for read-only keys: the DSL goes in `definition` as JSON text."""
    _actor(request)
    try:
        parsed = json.loads(definition)
    except json.JSONDecodeError as error:
        detail = {"code": "invalid_definition", "message": f"$: not JSON ({error})"}
        raise HTTPException(422, detail=detail) from error
    body = PreviewRequest(definition=parsed, sample_size=sample_size)
    return preview(siyu, body, sync=sync)


@router.get("")
def list_segments(request: Request, siyu: SiyuDep) -> list[dict[str, Any]]:
    _actor(request)
    with siyu.session_factory() as db:
        return [vars(s) for s in segments_service.get_all(db_session=db)]


@router.post("", status_code=201)
def create_segment(body: NewSegment, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    actor = _actor(request)
    try:
        with transaction(siyu.session_factory) as db:
            saved = segments_service.create_segment(
                db_session=db,
                name=body.name,
                definition=body.definition,
                now=siyu.clock.now(),
                owner=actor,
                description=body.description or "",
                schedule=body.schedule or Schedule.DAILY,
            )
    except SegmentError as error:
        raise http_error(error) from error
    return vars(saved)


@router.get("/{name}")
def get_segment(name: str, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    """The saved segment with its count history (oldest first)."""
    _actor(request)
    try:
        with siyu.session_factory() as db:
            segment = segments_service.get(db_session=db, name=name)
            history = segments_refresh.count_history(db_session=db, name=name)
    except SegmentError as error:
        raise http_error(error) from error
    return vars(segment) | {"history": [vars(point) for point in history]}


@router.put("/{name}")
def update_segment(name: str, body: SegmentBody, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    """Replace the definition (and the given description/schedule) of an existing segment."""
    actor = _actor(request)
    try:
        with transaction(siyu.session_factory) as db:
            segments_service.get_row(db, name)
            saved = segments_service.save_segment(
                db_session=db,
                name=name,
                definition=body.definition,
                now=siyu.clock.now(),
                owner=actor,
                description=body.description,
                schedule=body.schedule,
            )
    except SegmentError as error:
        raise http_error(error) from error
    return vars(saved)


@router.delete("/{name}", status_code=204)
def delete_segment(name: str, request: Request, siyu: SiyuDep) -> Response:
    actor = _actor(request)
    try:
        with transaction(siyu.session_factory) as db:
            segments_service.delete_segment(
                db_session=db, name=name, now=siyu.clock.now(), actor=actor
            )
    except SegmentError as error:
        raise http_error(error) from error
    return Response(status_code=204)


@router.post("/{name}/refresh")
def refresh_segment(
    name: str, request: Request, siyu: SiyuDep, force: bool = False, sync: bool = True
) -> dict[str, Any]:
    """Take a snapshot when due (or `force`): the count and how many entered and left."""
    _actor(request)
    if sync:
        sync_warehouse(siyu)
    try:
        result = segments_refresh.refresh_segment(
            session_factory=siyu.session_factory,
            warehouse=siyu.segment_warehouse,
            name=name,
            now=siyu.clock.now(),
            force=force,
            timezone=siyu.settings.tz,
        )
    except SegmentError as error:
        raise http_error(error) from error
    payload = vars(result) | {"entered": len(result.entered), "exited": len(result.exited)}
    return payload


@router.get("/{name}/diff")
def get_diff(
    name: str, request: Request, siyu: SiyuDep, at: datetime | None = None
) -> dict[str, Any]:
    """Member ids who entered and who left at the latest snapshot (or the one at/before `at`)."""
    _actor(request)
    try:
        with siyu.session_factory() as db:
            change = segments_refresh.segment_diff(db_session=db, name=name, at=at)
    except SegmentError as error:
        raise http_error(error) from error
    return vars(change)


@router.get("/{name}/export")
def export_segment(
    name: str,
    request: Request,
    siyu: SiyuDep,
    format: ExportFormat = ExportFormat.CSV,
    sync: bool = True,
) -> Response:
    """The segment's members now as a CSV or Parquet file (ids and non-identifying fields)."""
    _actor(request)
    if sync:
        sync_warehouse(siyu)
    with tempfile.TemporaryDirectory(prefix="siyu-export-") as folder:
        out = Path(folder) / f"segment.{format.value}"
        try:
            with siyu.session_factory() as db:
                segments_service.export_segment(
                    warehouse=siyu.segment_warehouse,
                    definition={"segment": name},
                    now=siyu.clock.now(),
                    out=out,
                    export_format=format,
                    session=db,
                    timezone=siyu.settings.tz,
                )
        except SegmentError as error:
            raise http_error(error) from error
        content = out.read_bytes()
    audit_export(
        session_factory=siyu.session_factory, now=siyu.clock.now(), actor=_exporter(request),
        kind="segment", subject=name, detail={"format": format.value, "bytes": len(content)},
    )  # fmt: skip
    filename = f"{name}.{format.value}".encode("ascii", "replace").decode()
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content, media_type=_MEDIA[format], headers=headers)
