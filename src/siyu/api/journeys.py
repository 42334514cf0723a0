"""HTTP API of journeys and delivery: definitions, stats, pause/resume, preview, outbox, consent."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, Field

from siyu.api.deps import SiyuDep
from siyu.channels import journey_runtime
from siyu.db import transaction
from siyu.delivery import service as delivery_service
from siyu.delivery.errors import DeliveryError, DeliveryErrorCode
from siyu.journeys import service as journey_service
from siyu.journeys import stats as journey_stats
from siyu.journeys import templates
from siyu.journeys.errors import JourneyError, JourneyErrorCode
from siyu.journeys.schemas import JourneyRead

router = APIRouter(prefix="/api", tags=["journeys"])

_STATUS = {JourneyErrorCode.NOT_FOUND: 404, JourneyErrorCode.INVALID_STATE: 409}


def _http(error: JourneyError) -> HTTPException:
    return HTTPException(
        status_code=_STATUS.get(error.code, 422),
        detail={"code": error.code.value, "message": error.message},
    )


class PreviewRequest(BaseModel):
    template: str
    member_id: int
    event: dict[str, Any] = {}


MAX_ID = 2**63 - 1  # ids are BIGINT; a larger one is a bad request, not a server error


class ConsentRequest(BaseModel):
    member_id: int = Field(ge=1, le=MAX_ID)
    channel: str = Field(min_length=1, max_length=32)
    granted: bool
    source: str = Field(min_length=1, max_length=200)


class AliyunSmsReport(BaseModel):
    """One item of Aliyun's SmsReport push (field names as Aliyun sends them)."""

    biz_id: str
    success: bool
    err_code: str = ""
    err_msg: str = ""


@router.get("/journeys")
def list_journeys(siyu: SiyuDep) -> list[dict[str, Any]]:
    with transaction(siyu.session_factory) as db:
        return [_summary(j) for j in journey_service.get_all(db_session=db)]


@router.post("/journeys", status_code=201)
def apply_journey(
    siyu: SiyuDep, text: Annotated[str, Body(media_type="text/plain")]
) -> dict[str, Any]:
    """Body: the YAML or JSON definition. Creates it, or publishes a new version if it changed."""
    try:
        with transaction(siyu.session_factory) as db:
            result = journey_service.apply_definition(
                db_session=db,
                now=siyu.clock.now(),
                text=text,
                actions=journey_runtime(siyu).actions,
                actor="api",
            )
    except JourneyError as error:
        raise _http(error) from error
    return {"outcome": result.outcome, **_summary(result.journey)}


@router.get("/journeys/templates")
def list_templates() -> list[dict[str, str]]:
    return [{"name": name, "yaml": templates.read(name)} for name in templates.names()]


@router.get("/journeys/{name}")
def show_journey(siyu: SiyuDep, name: str, version: int | None = None) -> dict[str, Any]:
    try:
        with transaction(siyu.session_factory) as db:
            journey = journey_service.get_by_name(db_session=db, name=name)
            stats = journey_stats.journey_stats(db_session=db, name=name, version=version)
    except JourneyError as error:
        raise _http(error) from error
    return {
        **_summary(journey),
        "definition": journey.definition,
        "stats": dataclasses.asdict(stats),
    }


@router.post("/journeys/{name}/pause")
def pause_journey(siyu: SiyuDep, name: str) -> dict[str, Any]:
    return _set_status(siyu, name, pause=True)


@router.post("/journeys/{name}/resume")
def resume_journey(siyu: SiyuDep, name: str) -> dict[str, Any]:
    return _set_status(siyu, name, pause=False)


@router.post("/journeys/preview")
def preview(siyu: SiyuDep, request: PreviewRequest) -> dict[str, str]:
    """Render a message template for one member; nothing is sent."""
    from siyu.channels.base import SandboxedRenderer

    try:
        with transaction(siyu.session_factory) as db:
            text = journey_service.preview_message(
                db_session=db,
                now=siyu.clock.now(),
                renderer=SandboxedRenderer(),
                template=request.template,
                member_id=request.member_id,
                event=request.event,
                tz=siyu.settings.tz,
            )
    except JourneyError as error:
        raise _http(error) from error
    return {"text": text}


@router.get("/journeys/{name}/preview")
def preview_journey(
    siyu: SiyuDep, name: str, member_id: int, version: int | None = None
) -> list[dict[str, Any]]:
    """Every message step of the journey rendered for one member; nothing is sent."""
    from siyu.channels.base import SandboxedRenderer

    try:
        with transaction(siyu.session_factory) as db:
            previews = journey_service.preview_journey(
                db_session=db,
                now=siyu.clock.now(),
                tz=siyu.settings.tz,
                renderer=SandboxedRenderer(),
                name=name,
                member_id=member_id,
                version=version,
            )
    except JourneyError as error:
        raise _http(error) from error
    return [dataclasses.asdict(p) for p in previews]


@router.get("/delivery/outbox")
def outbox(
    siyu: SiyuDep,
    channel: str | None = None,
    member_id: int | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    with transaction(siyu.session_factory) as db:
        rows = delivery_service.list_outbox(
            db_session=db, channel=channel, member_id=member_id, status=status, limit=limit
        )
    return [dataclasses.asdict(row) for row in rows]


@router.get("/delivery/decisions")
def decisions(
    siyu: SiyuDep,
    outbox_id: int | None = None,
    decision: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """What the delivery policy decided about each message (sent/held/suppressed…) and why."""
    with transaction(siyu.session_factory) as db:
        rows = delivery_service.list_decisions(
            db_session=db, outbox_id=outbox_id, decision=decision, limit=limit
        )
    return [dataclasses.asdict(row) for row in rows]


@router.post("/delivery/consents", status_code=201)
def record_consent(siyu: SiyuDep, request: ConsentRequest) -> dict[str, str]:
    try:
        with transaction(siyu.session_factory) as db:
            delivery_service.record_consent(
                db_session=db,
                now=siyu.clock.now(),
                member_id=request.member_id,
                channel=request.channel,
                granted=request.granted,
                source=request.source,
                actor="api",
            )
    except DeliveryError as error:
        status = 404 if error.code is DeliveryErrorCode.MEMBER_NOT_FOUND else 422
        raise HTTPException(
            status_code=status, detail={"code": error.code.value, "message": error.message}
        ) from error
    return {"status": "recorded"}


@router.post("/delivery/receipts/aliyun-sms")
def aliyun_sms_receipts(siyu: SiyuDep, reports: list[AliyunSmsReport]) -> dict[str, int]:
    """Aliyun pushes delivery reports here; each becomes a message_delivered/failed event."""
    matched = 0
    with transaction(siyu.session_factory) as db:
        for report in reports:
            matched += delivery_service.record_receipt(
                db_session=db,
                now=siyu.clock.now(),
                provider_message_id=report.biz_id,
                status="delivered" if report.success else "failed",
                detail=f"{report.err_code} {report.err_msg}".strip(),
            )
    # Aliyun expects {"code": 0} to stop re-pushing.
    return {"code": 0, "matched": matched}


def _set_status(siyu: SiyuDep, name: str, *, pause: bool) -> dict[str, Any]:
    change = journey_service.pause if pause else journey_service.resume
    try:
        with transaction(siyu.session_factory) as db:
            journey = change(db_session=db, now=siyu.clock.now(), name=name, actor="api")
    except JourneyError as error:
        raise _http(error) from error
    return _summary(journey)


def _summary(journey: JourneyRead) -> dict[str, Any]:
    return {
        "name": journey.name,
        "title": journey.title,
        "status": journey.status,
        "version": journey.current_version,
    }
