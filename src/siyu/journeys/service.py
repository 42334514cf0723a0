"""Use cases of journeys: apply (create or version) a definition, list, show, pause, resume.

Applying the same definition again changes nothing; a changed definition becomes a new version
that new enrollments start on, while running enrollments finish on the version they began.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.audit import service as audit_service
from siyu.journeys import conditions, sources
from siyu.journeys.actions import ActionRegistry, TemplateRenderer, member_fields
from siyu.journeys.definition import (
    ActionStep,
    BranchStep,
    JourneyDefinition,
    ScheduleTrigger,
    SegmentTrigger,
)
from siyu.journeys.errors import JourneyError, JourneyErrorCode, JourneyNotFound
from siyu.journeys.models import Journey, JourneyStatus, JourneyVersion
from siyu.journeys.schemas import ApplyResult, JourneyRead, MessagePreview


def parse_definition(text: str, *, actions: ActionRegistry) -> JourneyDefinition:
    """Parse YAML or JSON (JSON is YAML) and validate it, naming the field that is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise JourneyError(
            JourneyErrorCode.INVALID_DEFINITION, f"not valid YAML/JSON: {error}"
        ) from error
    if not isinstance(data, dict):
        raise JourneyError(JourneyErrorCode.INVALID_DEFINITION, "a journey definition is a mapping")
    return validate_definition(data, actions=actions)


def validate_definition(data: Mapping[str, Any], *, actions: ActionRegistry) -> JourneyDefinition:
    try:
        definition = JourneyDefinition.model_validate(dict(data))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise JourneyError(JourneyErrorCode.INVALID_DEFINITION, problems) from error
    for step in definition.steps:
        if isinstance(step, ActionStep):
            actions.get(step.action).validate(step.params)
        if isinstance(step, BranchStep):
            conditions.validate(step.condition, f"steps.{step.id}.condition")
    if isinstance(definition.trigger, ScheduleTrigger):
        conditions.validate(definition.trigger.audience, "trigger.audience")
    return definition


def apply_definition(
    *, db_session: Session, now: datetime, text: str, actions: ActionRegistry, actor: str = "system"
) -> ApplyResult:
    """Create the journey, or publish a new version when the definition changed."""
    definition = parse_definition(text, actions=actions)
    if isinstance(definition.trigger, SegmentTrigger):
        _require_segment(db_session, definition.trigger.segment)
    canonical = definition.model_dump(mode="json", by_alias=True)
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
    journey = db_session.scalar(select(Journey).where(Journey.name == definition.name))
    if journey is None:
        journey = Journey(
            name=definition.name,
            title=definition.title,
            status=JourneyStatus.ACTIVE,
            current_version=1,
            created_at=now,
            updated_at=now,
        )
        db_session.add(journey)
        db_session.flush()
        outcome = "created"
    else:
        latest = _version(db_session, journey.id, journey.current_version)
        if latest.digest == digest:
            return ApplyResult(journey=_read(journey, latest), outcome="unchanged")
        journey.current_version += 1
        journey.title, journey.updated_at = definition.title, now
        outcome = "new_version"
    version = JourneyVersion(
        journey_id=journey.id,
        version=journey.current_version,
        definition=canonical,
        source_text=text,
        digest=digest,
        created_at=now,
        created_by=actor,
    )
    db_session.add(version)
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=actor,
        action=f"journey.{outcome}",
        entity_type="journey",
        entity_id=journey.id,
        detail={"version": journey.current_version},
    )
    return ApplyResult(journey=_read(journey, version), outcome=outcome)


def _require_segment(db_session: Session, name: str) -> None:
    s = sources.segments
    if db_session.execute(select(s.c.id).where(s.c.name == name)).first() is None:
        raise JourneyError(
            JourneyErrorCode.INVALID_DEFINITION,
            f"trigger.segment: no saved segment named {name!r} (save it with the segments API)",
        )


def get_all(*, db_session: Session) -> list[JourneyRead]:
    journeys = db_session.scalars(select(Journey).order_by(Journey.name)).all()
    return [_read(j) for j in journeys]


def get_by_name(*, db_session: Session, name: str, version: int | None = None) -> JourneyRead:
    journey = _journey(db_session, name)
    return _read(journey, _version(db_session, journey.id, version or journey.current_version))


def pause(*, db_session: Session, now: datetime, name: str, actor: str = "system") -> JourneyRead:
    """Stop enrolling and hold every due step until resumed (held steps then run, late)."""
    return _set_status(db_session, now, name, JourneyStatus.PAUSED, actor)


def resume(*, db_session: Session, now: datetime, name: str, actor: str = "system") -> JourneyRead:
    return _set_status(db_session, now, name, JourneyStatus.ACTIVE, actor)


def _set_status(
    db: Session, now: datetime, name: str, status: JourneyStatus, actor: str
) -> JourneyRead:
    journey = _journey(db, name)
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyError(JourneyErrorCode.INVALID_STATE, f"journey {name!r} is archived")
    if journey.status != status:
        journey.status, journey.updated_at = status, now
        audit_service.record(
            db_session=db,
            now=now,
            actor=actor,
            action=f"journey.{status.value}",
            entity_type="journey",
            entity_id=journey.id,
        )
    return _read(journey)


def preview_message(
    *,
    db_session: Session,
    now: datetime,
    renderer: TemplateRenderer,
    template: str,
    member_id: int,
    event: Mapping[str, object] | None = None,
    journey: str = "preview",
    tz: ZoneInfo | None = None,
) -> str:
    """Render a message template for one member without sending anything."""
    renderer.check(template)
    return renderer.render(template, _variables(db_session, now, member_id, event, journey, tz))


def preview_journey(
    *,
    db_session: Session,
    now: datetime,
    tz: ZoneInfo,
    renderer: TemplateRenderer,
    name: str,
    member_id: int,
    version: int | None = None,
    event: Mapping[str, object] | None = None,
) -> list[MessagePreview]:
    """Every send_message step of the journey rendered for one member, nothing sent.

    A step whose template fails for this member (an unknown variable…) is shown with the error,
    so an operator sees all the problems at once instead of the first one.
    """
    found = get_by_name(db_session=db_session, name=name, version=version)
    if (
        db_session.execute(
            select(sources.members.c.id).where(sources.members.c.id == member_id)
        ).first()
        is None
    ):
        raise JourneyError(JourneyErrorCode.NOT_FOUND, f"no member {member_id}")
    definition = JourneyDefinition.model_validate(found.definition)
    variables = _variables(db_session, now, member_id, event, name, tz)
    previews = []
    for step in definition.steps:
        if isinstance(step, ActionStep) and step.action == "send_message":
            previews.append(_render_step(renderer, step, variables))
    return previews


def _render_step(
    renderer: TemplateRenderer, step: ActionStep, variables: Mapping[str, object]
) -> MessagePreview:
    channel = str(step.params.get("channel", "sandbox"))
    try:
        subject = renderer.render(str(step.params.get("subject", "")), variables)
        body = renderer.render(str(step.params.get("body", "")), variables)
    except JourneyError as error:
        return MessagePreview(step.id, channel, "", "", error=error.message)
    return MessagePreview(step.id, channel, subject, body)


def _variables(
    db: Session,
    now: datetime,
    member_id: int,
    event: Mapping[str, object] | None,
    journey: str,
    tz: ZoneInfo | None,
) -> dict[str, object]:
    """The same variables the send_message action gives a template (actions.template_variables)."""
    return {
        "member": member_fields(db, member_id),
        "event": dict(event or {}),
        "journey": journey,
        "today": (now.astimezone(tz) if tz else now).date(),
    }


def _journey(db: Session, name: str) -> Journey:
    journey = db.scalar(select(Journey).where(Journey.name == name))
    if journey is None:
        raise JourneyNotFound(name)
    return journey


def _version(db: Session, journey_id: int, version: int) -> JourneyVersion:
    row = db.scalar(
        select(JourneyVersion).where(
            JourneyVersion.journey_id == journey_id, JourneyVersion.version == version
        )
    )
    if row is None:
        raise JourneyError(
            JourneyErrorCode.NOT_FOUND, f"journey {journey_id} has no version {version}"
        )
    return row


def _read(journey: Journey, version: JourneyVersion | None = None) -> JourneyRead:
    return JourneyRead(
        id=journey.id,
        name=journey.name,
        title=journey.title,
        status=journey.status,
        current_version=journey.current_version,
        created_at=journey.created_at,
        updated_at=journey.updated_at,
        definition=dict(version.definition) if version else {},
        source_text=version.source_text if version else "",
    )
