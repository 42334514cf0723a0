"""How the engine reacts to what members do: event triggers, awaited events, exits and goals.

The scan reads the operational `events` table (and paid orders as `order_paid`, one per order)
past a watermark, in id order, and stops at the first event later than `now` so a simulation
with `--now` never sees the future. Every change to an enrollment locks its row first, the
same lock the step engine holds while it runs a step, so an event can never race a step.
Known limit: on PostgreSQL an id committed after a higher one was scanned is missed; ingestion
writes events in one transaction per batch, which keeps that window small.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.db import transaction
from siyu.journeys import cursors, sources
from siyu.journeys.definition import EventTrigger, JourneyDefinition
from siyu.journeys.enrollment import enroll, finish
from siyu.journeys.models import Enrollment, EnrollmentState, Journey, JourneyStatus, JourneyTimer
from siyu.journeys.runtime import JourneyRuntime

ORDER_EVENT = "order_paid"
# An event older than this when the worker first sees it (a backfilled import of last year's
# history) does not start a journey: nobody wants a "welcome" for a sign-up of last spring.
# It still counts for waits, exits and goals.
TRIGGER_MAX_LAG = timedelta(hours=48)


@dataclass(frozen=True)
class MemberEvent:
    key: str
    type: str
    member_id: int
    occurred_at: datetime
    properties: dict[str, Any]


def process_events(*, runtime: JourneyRuntime, now: datetime, batch_size: int = 1000) -> int:
    """React to every new event up to `now`; returns how many events were looked at."""
    total = 0
    for name, reader in (("events", _read_events), ("orders", _read_orders)):
        while True:
            with transaction(runtime.session_factory) as db:
                cursor = cursors.lock(db, f"reactions:{name}", now=now, initial="0")
                if cursor is None:
                    break
                journeys = _journeys(db, runtime)
                seen, last_id = 0, int(cursor.value)
                for row_id, event in reader(db, last_id, now, batch_size):
                    seen, last_id = seen + 1, row_id
                    if event is not None:
                        _react(db, runtime, journeys, event, now)
                cursors.advance(cursor, str(last_id), now=now)
            total += seen
            if seen < batch_size:
                break
    return total


def _journeys(db: Session, runtime: JourneyRuntime) -> list[tuple[Journey, JourneyDefinition]]:
    rows = db.scalars(select_journeys()).all()
    return [(j, runtime.definition(db, j.id, j.current_version)[1]) for j in rows]


def select_journeys() -> sa.Select[Any]:
    return sa.select(Journey).where(Journey.status != "archived").order_by(Journey.id)


def _read_events(
    db: Session, after: int, now: datetime, limit: int
) -> Iterator[tuple[int, MemberEvent | None]]:
    e = sources.events
    rows = db.execute(
        sa.select(e.c.id, e.c.event_id, e.c.type, e.c.member_id, e.c.occurred_at, e.c.properties)
        .where(e.c.id > after)
        .order_by(e.c.id)
        .limit(limit)
    )
    for row in rows:
        if row.occurred_at > now:
            return  # the future, as seen from `now`: stop so the watermark does not pass it
        if row.member_id is None:
            yield row.id, None
            continue
        yield (
            row.id,
            MemberEvent(
                row.event_id, row.type, row.member_id, row.occurred_at, dict(row.properties or {})
            ),
        )


def _read_orders(
    db: Session, after: int, now: datetime, limit: int
) -> Iterator[tuple[int, MemberEvent | None]]:
    o = sources.order_lines
    rows = db.execute(
        sa.select(o.c.id, o.c.order_id, o.c.member_id, o.c.paid_at, o.c.status, o.c.amount)
        .where(o.c.id > after)
        .order_by(o.c.id)
        .limit(limit)
    )
    for row in rows:
        if row.paid_at > now:
            return
        earlier = db.execute(
            sa.select(o.c.id).where(o.c.order_id == row.order_id, o.c.id < row.id).limit(1)
        ).first()
        if row.status != "paid" or earlier is not None:
            yield row.id, None  # one order_paid per order, from its first line
            continue
        properties = {"order_id": row.order_id, "amount": float(row.amount)}
        yield (
            row.id,
            MemberEvent(
                f"order:{row.order_id}", ORDER_EVENT, row.member_id, row.paid_at, properties
            ),
        )


def _react(
    db: Session,
    runtime: JourneyRuntime,
    journeys: list[tuple[Journey, JourneyDefinition]],
    event: MemberEvent,
    now: datetime,
) -> None:
    for journey, definition in journeys:
        trigger = definition.trigger
        if journey.status != JourneyStatus.ACTIVE or not isinstance(trigger, EventTrigger):
            continue
        if event.occurred_at < now - TRIGGER_MAX_LAG:
            continue
        if trigger.event == event.type and all(
            event.properties.get(k) == v for k, v in trigger.where.items()
        ):
            enroll(
                db_session=db,
                now=event.occurred_at,
                journey_id=journey.id,
                version=journey.current_version,
                definition=definition,
                member_id=event.member_id,
                occurrence_key=f"event:{event.key}",
                context={"type": event.type, **event.properties},
            )
    _update_enrollments(db, runtime, event, now)


def _update_enrollments(
    db: Session, runtime: JourneyRuntime, event: MemberEvent, now: datetime
) -> None:
    query = (
        sa.select(Enrollment)
        .where(
            Enrollment.member_id == event.member_id,
            Enrollment.entered_at <= event.occurred_at,
            Enrollment.occurrence_key != f"event:{event.key}",  # its own trigger is not its goal
        )
        .order_by(Enrollment.id)
        .with_for_update()
    )
    for enrollment in db.scalars(query):
        _, definition = runtime.definition(db, enrollment.journey_id, enrollment.version)
        goal = definition.goal
        if (
            goal
            and goal.event == event.type
            and enrollment.converted_at is None
            and (enrollment.goal_deadline is None or event.occurred_at <= enrollment.goal_deadline)
        ):
            enrollment.converted_at = event.occurred_at
            if goal.exit_on_goal and enrollment.state == EnrollmentState.ACTIVE:
                finish(
                    db_session=db,
                    enrollment=enrollment,
                    now=now,
                    state=EnrollmentState.EXITED,
                    reason="goal reached",
                )
        if enrollment.state != EnrollmentState.ACTIVE:
            continue
        if event.type in definition.exit_on:
            finish(
                db_session=db,
                enrollment=enrollment,
                now=now,
                state=EnrollmentState.EXITED,
                reason=f"exit event {event.type}",
            )
        elif enrollment.waiting_event == event.type and event.occurred_at >= (
            enrollment.step_started_at or event.occurred_at
        ):
            db.execute(
                sa.update(JourneyTimer)
                .where(
                    JourneyTimer.enrollment_id == enrollment.id, JourneyTimer.reason == "timeout"
                )
                .values(reason="event", due_at=event.occurred_at)
            )
            enrollment.waiting_event = None
