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
CHUNK = 500


def run_scheduled_triggers(*, runtime: JourneyRuntime, now: datetime) -> int:
    """Enroll members for date and schedule triggers due by `now`; returns enrollments made.

    Each occasion (a day, a slot) is enrolled in chunks of `CHUNK` members, one transaction
    each, and its cursor advances only once the occasion is done: a crash re-runs the occasion
    and the UNIQUE occurrence key makes the members already enrolled a no-op.
    """
    with transaction(runtime.session_factory) as db:
        journeys = [j.id for j in db.scalars(select_journeys())]
    enrolled = 0
    for journey_id in journeys:
        for key, at, name, value, members in _occasions(runtime, journey_id, now):
            enrolled += _enroll_chunks(runtime, journey_id, members, key, at)
            with transaction(runtime.session_factory) as db:
                cursor = cursors.lock(db, name, now=now, initial=value)
                if cursor is not None:
                    cursors.advance(cursor, value, now=now)
    return enrolled


Occasion = tuple[str, datetime, str, str, list[int]]


def _occasions(runtime: JourneyRuntime, journey_id: int, now: datetime) -> list[Occasion]:
    with transaction(runtime.session_factory) as db:
        journey = db.get(Journey, journey_id)
        assert journey is not None
        _, definition = runtime.definition(db, journey.id, journey.current_version)
        trigger = definition.trigger
        if isinstance(trigger, DateAttributeTrigger):
            return _date_occasions(db, runtime, journey, trigger, now)
        if isinstance(trigger, ScheduleTrigger):
            return _schedule_occasions(db, runtime, journey, trigger, now)
    return []


def _date_occasions(
    db: Session,
    runtime: JourneyRuntime,
    journey: Journey,
    trigger: DateAttributeTrigger,
    now: datetime,
) -> list[Occasion]:
    today = timing.business_date(now, runtime.tz)
    if now < timing.at_business_time(today, trigger.at, runtime.tz):
        today -= timedelta(days=1)
    name = f"date:{journey.id}"
    cursor = cursors.lock(db, name, now=now, initial=(today - timedelta(days=1)).isoformat())
    if cursor is None:
        return []
    day = max(date.fromisoformat(cursor.value), today - timedelta(days=MAX_CATCH_UP_DAYS))
    occasions: list[Occasion] = []
    while day < today:
        day += timedelta(days=1)
        active = journey.status == JourneyStatus.ACTIVE
        members = _anniversaries(db, runtime, trigger, day) if active else []
        at = timing.at_business_time(day, trigger.at, runtime.tz)
        occasions.append((f"date:{day.isoformat()}", at, name, day.isoformat(), members))
    return occasions


def _schedule_occasions(
    db: Session, runtime: JourneyRuntime, journey: Journey, trigger: ScheduleTrigger, now: datetime
) -> list[Occasion]:
    name = f"schedule:{journey.id}"
    cursor = cursors.lock(db, name, now=now, initial="")
    if cursor is None:
        return []
    since = datetime.fromisoformat(cursor.value) if cursor.value else None
    occasions: list[Occasion] = []
    for slot in timing.schedule_slots(trigger, since=since, until=now):
        members: list[int] = []
        if journey.status == JourneyStatus.ACTIVE:
            members = list(
                runtime.conditions.audience(db_session=db, dsl=trigger.audience, now=slot)
            )
        occasions.append((f"schedule:{slot.isoformat()}", slot, name, slot.isoformat(), members))
    return occasions


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


def _enroll_chunks(
    runtime: JourneyRuntime, journey_id: int, members: list[int], key: str, at: datetime
) -> int:
    enrolled = 0
    for start in range(0, len(members), CHUNK):
        with transaction(runtime.session_factory) as db:
            journey = db.get(Journey, journey_id)
            assert journey is not None
            _, definition = runtime.definition(db, journey.id, journey.current_version)
            for member_id in members[start : start + CHUNK]:
                enrolled += _enroll(db, journey, definition, member_id, key, at)
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
