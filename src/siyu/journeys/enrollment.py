"""Enrolling a member (re-entry policy, holdout) and ending an enrollment; helpers, never commit.

Enrolling is idempotent: (journey, member, occurrence_key) is UNIQUE, where the occurrence key
names what caused it (`event:<event_id>`, `date:2026-06-18`, `schedule:<slot>`, `segment:…`).
The insert runs in a savepoint so a concurrent worker enrolling the same occurrence costs a
no-op, not the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.journeys import sources
from siyu.journeys.assignment import in_holdout
from siyu.journeys.definition import JourneyDefinition, ReEntry
from siyu.journeys.models import Enrollment, EnrollmentState, JourneyTimer

LIVE_STATES = (EnrollmentState.ACTIVE,)


def enroll(
    *,
    db_session: Session,
    now: datetime,
    journey_id: int,
    version: int,
    definition: JourneyDefinition,
    member_id: int,
    occurrence_key: str,
    context: Mapping[str, object] | None = None,
) -> Enrollment | None:
    """Start the member on the journey's first step, or return None when the policy says no."""
    if not _may_enter(db_session, now, journey_id, definition, member_id, occurrence_key):
        return None
    holdout = in_holdout(
        journey=definition.name, member_id=member_id, percent=definition.holdout_percent
    )
    first = definition.steps[0].id
    enrollment = Enrollment(
        journey_id=journey_id,
        version=version,
        member_id=member_id,
        occurrence_key=occurrence_key,
        state=EnrollmentState.HOLDOUT if holdout else EnrollmentState.ACTIVE,
        current_step=None if holdout else first,
        step_started_at=now,
        context=dict(context or {}),
        visits={} if holdout else {first: 1},
        entered_at=now,
        goal_deadline=now + definition.goal.within.delta if definition.goal else None,
    )
    try:
        with db_session.begin_nested():
            db_session.add(enrollment)
            db_session.flush()
    except IntegrityError:
        return None  # the same occurrence was enrolled concurrently: nothing to do
    if not holdout:
        db_session.add(
            JourneyTimer(
                enrollment_id=enrollment.id,
                journey_id=journey_id,
                step_id=first,
                reason="run",
                due_at=now,
            )
        )
    return enrollment


def _may_enter(
    db: Session,
    now: datetime,
    journey_id: int,
    definition: JourneyDefinition,
    member_id: int,
    key: str,
) -> bool:
    m = sources.members
    member = db.execute(
        sa.select(m.c.merged_into_id, m.c.erased_at).where(m.c.id == member_id)
    ).first()
    if member is None or member.merged_into_id is not None or member.erased_at is not None:
        return False
    previous = db.execute(
        sa.select(
            Enrollment.occurrence_key,
            Enrollment.state,
            Enrollment.finished_at,
            Enrollment.entered_at,
        ).where(Enrollment.journey_id == journey_id, Enrollment.member_id == member_id)
    ).all()
    if any(row.occurrence_key == key for row in previous):
        return False
    if not previous or definition.reentry == ReEntry.ALWAYS:
        return True
    if definition.reentry == ReEntry.NEVER:
        return False
    if any(row.state == EnrollmentState.ACTIVE for row in previous):
        return False
    cooldown = definition.reentry_cooldown
    if cooldown is None:
        return True
    last: datetime = max((row.finished_at or row.entered_at) for row in previous)
    return last + cooldown.delta <= now


def finish(
    *,
    db_session: Session,
    enrollment: Enrollment,
    now: datetime,
    state: EnrollmentState,
    reason: str | None,
    timer_deleted: bool = False,
) -> None:
    """End an enrollment: it keeps its step for the stats and loses its timer.

    The step engine has deleted the timer already (`timer_deleted`): skipping the DELETE there
    also skips the autoflush it would cause, which would write the batch row by row.
    """
    if not timer_deleted:
        db_session.execute(
            sa.delete(JourneyTimer).where(JourneyTimer.enrollment_id == enrollment.id)
        )
    enrollment.state = state
    enrollment.finished_at = now
    enrollment.exit_reason = reason
    enrollment.waiting_event = None
