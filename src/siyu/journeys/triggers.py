"""Triggers that are not single events: date attributes, recurring schedules, segment changes.

Decisions where the issue is silent:
- A date trigger fires once per business day at its time of day; days missed while the worker
  was down are caught up (at most 31), days passed while the journey was paused are skipped.
- A schedule fires every slot in (last slot, now]; slots passed while paused are skipped.
- Segment entry/exit: the segments domain computes who entered or left; it hands the member
  ids to `enroll_segment_changes` (the worker calls a registered provider, see worker hooks).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.db import transaction
from siyu.journeys import cursors, sources, timing
from siyu.journeys.definition import (
    DateAttributeTrigger,
    JourneyDefinition,
    ScheduleTrigger,
    SegmentTrigger,
)
from siyu.journeys.enrollment import enroll
from siyu.journeys.models import Journey, JourneyStatus
from siyu.journeys.reactions import select_journeys
from siyu.journeys.runtime import JourneyRuntime

MAX_CATCH_UP_DAYS = 31


def run_scheduled_triggers(*, runtime: JourneyRuntime, now: datetime) -> int:
    """Enroll members for date and schedule triggers due by `now`; returns enrollments made."""
    with transaction(runtime.session_factory) as db:
        journeys = [(j.id, j.name) for j in db.scalars(select_journeys())]
    enrolled = 0
    for journey_id, _name in journeys:
        with transaction(runtime.session_factory) as db:
            journey = db.get(Journey, journey_id)
            assert journey is not None
            _, definition = runtime.definition(db, journey.id, journey.current_version)
            if isinstance(definition.trigger, DateAttributeTrigger):
                enrolled += _date_trigger(db, runtime, journey, definition, definition.trigger, now)
            elif isinstance(definition.trigger, ScheduleTrigger):
                enrolled += _schedule_trigger(
                    db, runtime, journey, definition, definition.trigger, now
                )
    return enrolled


def _date_trigger(
    db: Session,
    runtime: JourneyRuntime,
    journey: Journey,
    definition: JourneyDefinition,
    trigger: DateAttributeTrigger,
    now: datetime,
) -> int:
    today = timing.business_date(now, runtime.tz)
    if now < timing.at_business_time(today, trigger.at, runtime.tz):
        today -= timedelta(days=1)
    cursor = cursors.lock(
        db, f"date:{journey.id}", now=now, initial=(today - timedelta(days=1)).isoformat()
    )
    if cursor is None:
        return 0
    day, enrolled = (
        max(date.fromisoformat(cursor.value), today - timedelta(days=MAX_CATCH_UP_DAYS)),
        0,
    )
    while day < today:
        day += timedelta(days=1)
        if journey.status == JourneyStatus.ACTIVE:
            at = timing.at_business_time(day, trigger.at, runtime.tz)
            for member_id in _anniversaries(db, runtime, trigger, day):
                enrolled += _enroll(
                    db, journey, definition, member_id, f"date:{day.isoformat()}", at
                )
    cursors.advance(cursor, today.isoformat(), now=now)
    return enrolled


def _anniversaries(
    db: Session, runtime: JourneyRuntime, trigger: DateAttributeTrigger, day: date
) -> list[int]:
    m = sources.members
    column = m.c[trigger.attribute]
    rows = db.execute(
        sa.select(m.c.id, column).where(
            column.is_not(None), m.c.merged_into_id.is_(None), m.c.erased_at.is_(None)
        )
    )
    found = []
    for member_id, value in rows:
        value_date = value.astimezone(runtime.tz).date() if isinstance(value, datetime) else value
        if trigger.attribute == "registered_at" and value_date.year >= day.year:
            continue  # an anniversary needs at least one year
        if timing.anniversary_matches(value_date, on=day, offset_days=trigger.offset_days):
            found.append(int(member_id))
    return found


def _schedule_trigger(
    db: Session,
    runtime: JourneyRuntime,
    journey: Journey,
    definition: JourneyDefinition,
    trigger: ScheduleTrigger,
    now: datetime,
) -> int:
    cursor = cursors.lock(db, f"schedule:{journey.id}", now=now, initial="")
    if cursor is None:
        return 0
    since = datetime.fromisoformat(cursor.value) if cursor.value else None
    slots = timing.schedule_slots(trigger, since=since, until=now)
    enrolled = 0
    for slot in slots:
        if journey.status != JourneyStatus.ACTIVE:
            continue
        audience = runtime.conditions.audience(db_session=db, dsl=trigger.audience, now=slot)
        for member_id in list(audience):
            enrolled += _enroll(
                db, journey, definition, member_id, f"schedule:{slot.isoformat()}", slot
            )
    if slots:
        cursors.advance(cursor, slots[-1].isoformat(), now=now)
    return enrolled


def enroll_segment_changes(
    *,
    runtime: JourneyRuntime,
    segment: str,
    entered: Iterable[int],
    exited: Iterable[int],
    at: datetime,
) -> int:
    """Enroll members who entered (or left) `segment` at `at` into journeys triggered by it."""
    changes = {"segment_entry": list(entered), "segment_exit": list(exited)}
    enrolled = 0
    with transaction(runtime.session_factory) as db:
        for journey in db.scalars(sa.select(Journey).where(Journey.status == JourneyStatus.ACTIVE)):
            _, definition = runtime.definition(db, journey.id, journey.current_version)
            trigger = definition.trigger
            if not isinstance(trigger, SegmentTrigger) or trigger.segment != segment:
                continue
            for member_id in changes[trigger.type]:
                key = f"{trigger.type}:{segment}:{at.isoformat()}"
                enrolled += _enroll(db, journey, definition, member_id, key, at)
    return enrolled


def _enroll(
    db: Session,
    journey: Journey,
    definition: JourneyDefinition,
    member_id: int,
    key: str,
    at: datetime,
) -> int:
    made = enroll(
        db_session=db,
        now=at,
        journey_id=journey.id,
        version=journey.current_version,
        definition=definition,
        member_id=member_id,
        occurrence_key=key,
    )
    return 0 if made is None else 1
