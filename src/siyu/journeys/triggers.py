"""Triggers that are not single events: date attributes, recurring schedules, segment changes.

Decisions where the issue is silent:
- A date trigger fires once per business day at its time of day; days missed while the worker
  was down are caught up (at most 31), days passed while the journey was paused are skipped.
- A schedule fires every slot in (last slot, now]; slots passed while paused are skipped.
- Segment entry/exit: the segments domain records each refresh of a saved segment as a
  snapshot with who entered and who left since the previous one. `run_segment_triggers` reads
  those snapshots in order with a cursor per journey (the instant of the last snapshot done),
  so a crash re-reads a snapshot and the occurrence key `segment_entry:<name>:<taken_at>`
  makes it enroll nobody twice. Only snapshots taken after the journey was first published
  count: members already in the segment then did not "enter" (but a segment created after
  the journey has everyone entering at its first snapshot, as the segments domain defines it).
  Snapshots taken while the journey is paused are skipped. `enroll_segment_changes` lets a
  caller push a diff directly; it uses the same occurrence key, so both paths never double.
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


def run_segment_triggers(*, runtime: JourneyRuntime, now: datetime) -> int:
    """Enroll from every segment snapshot taken by `now` that a journey has not done yet."""
    with transaction(runtime.session_factory) as db:
        watching = [
            (journey.id, journey.created_at, trigger)
            for journey, trigger in _segment_journeys(db, runtime)
        ]
    enrolled = 0
    for journey_id, published_at, trigger in watching:
        for taken_at, members in _snapshot_changes(runtime, journey_id, published_at, trigger, now):
            key = f"{trigger.type}:{trigger.segment}:{taken_at.isoformat()}"
            enrolled += _enroll_chunks(runtime, journey_id, members, key, taken_at)
            with transaction(runtime.session_factory) as db:
                cursor = cursors.lock(
                    db, f"segment:{journey_id}", now=now, initial=taken_at.isoformat()
                )
                if cursor is not None:
                    cursors.advance(cursor, taken_at.isoformat(), now=now)
    return enrolled


def watched_segments(*, runtime: JourneyRuntime) -> list[str]:
    """Names of the saved segments that active journeys are triggered by (to refresh them)."""
    with transaction(runtime.session_factory) as db:
        return sorted(
            {
                trigger.segment
                for journey, trigger in _segment_journeys(db, runtime)
                if journey.status == JourneyStatus.ACTIVE
            }
        )


def _segment_journeys(db: Session, runtime: JourneyRuntime) -> list[tuple[Journey, SegmentTrigger]]:
    found = []
    for journey in db.scalars(select_journeys()):
        _, definition = runtime.definition(db, journey.id, journey.current_version)
        if isinstance(definition.trigger, SegmentTrigger):
            found.append((journey, definition.trigger))
    return found


def _snapshot_changes(
    runtime: JourneyRuntime,
    journey_id: int,
    published_at: datetime,
    trigger: SegmentTrigger,
    now: datetime,
) -> list[tuple[datetime, list[int]]]:
    try:
        from siyu.segments.snapshots import decode
    except ImportError:  # the segments domain is not installed: nothing can have entered
        return []
    s, snap = sources.segments, sources.segment_snapshots
    with transaction(runtime.session_factory) as db:
        cursor = cursors.lock(
            db, f"segment:{journey_id}", now=now, initial=published_at.isoformat()
        )
        if cursor is None:
            return []
        journey = db.get(Journey, journey_id)
        active = journey is not None and journey.status == JourneyStatus.ACTIVE
        column = snap.c.entered if trigger.type == "segment_entry" else snap.c.exited
        rows = db.execute(
            sa.select(snap.c.taken_at, column)
            .join(s, s.c.id == snap.c.segment_id)
            .where(
                s.c.name == trigger.segment,
                snap.c.taken_at > datetime.fromisoformat(cursor.value),
                snap.c.taken_at <= now,
            )
            .order_by(snap.c.taken_at)
        ).all()
        return [(taken_at, sorted(decode(blob)) if active else []) for taken_at, blob in rows]


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
    with transaction(runtime.session_factory) as db:
        journeys = [
            (journey.id, trigger.type)
            for journey, trigger in _segment_journeys(db, runtime)
            if journey.status == JourneyStatus.ACTIVE and trigger.segment == segment
        ]
    enrolled = 0
    for journey_id, kind in journeys:
        key = f"{kind}:{segment}:{at.isoformat()}"
        enrolled += _enroll_chunks(runtime, journey_id, changes[kind], key, at)
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
