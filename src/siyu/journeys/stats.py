"""Per-step counts and the conversion comparison against the holdout group.

- entered: enrollments that reached the step (ran it, wait at it, or left the journey at it);
- waiting: active enrollments whose next step is this one;
- exited: enrollments that left the journey at this step (exit event, exit step, failure);
- converted: of those that entered, how many reached the goal within its window.
The holdout comparison is the difference of two conversion rates with a 95% Wald interval
(normal approximation; with fewer than ~30 conversions per group read it as indicative).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.journeys.definition import JourneyDefinition
from siyu.journeys.models import Enrollment, EnrollmentState, Journey, JourneyVersion, StepRun
from siyu.journeys.schemas import GroupRate, HoldoutComparison, JourneyStats, StepCounts
from siyu.journeys.service import _journey

Z_95 = 1.959964
_Q = TypeVar("_Q", bound=sa.Select[*tuple[Any, ...]])


def journey_stats(*, db_session: Session, name: str, version: int | None = None) -> JourneyStats:
    journey = _journey(db_session, name)
    definition = _definition(db_session, journey, version or journey.current_version)
    enrollments = _enrollment_states(db_session, journey.id, version)
    steps = _step_counts(db_session, journey.id, version, definition)
    comparison = (
        compare_holdout(db_session=db_session, journey_id=journey.id, version=version)
        if definition.goal
        else None
    )
    return JourneyStats(
        name=name, version=version, enrollments=enrollments, steps=steps, comparison=comparison
    )


def _definition(db: Session, journey: Journey, version: int) -> JourneyDefinition:
    data = db.scalar(
        sa.select(JourneyVersion.definition).where(
            JourneyVersion.journey_id == journey.id, JourneyVersion.version == version
        )
    )
    return JourneyDefinition.model_validate(data)


def _scope(query: _Q, journey_id: int, version: int | None) -> _Q:
    query = query.where(Enrollment.journey_id == journey_id)
    return query if version is None else query.where(Enrollment.version == version)


def _enrollment_states(db: Session, journey_id: int, version: int | None) -> dict[str, int]:
    query = _scope(
        sa.select(Enrollment.state, sa.func.count()).group_by(Enrollment.state), journey_id, version
    )
    counts = {state.value: 0 for state in EnrollmentState}
    counts.update({str(state): int(n) for state, n in db.execute(query)})
    return counts


def _step_counts(
    db: Session, journey_id: int, version: int | None, definition: JourneyDefinition
) -> list[StepCounts]:
    runs = sa.select(StepRun.step_id.label("step"), StepRun.enrollment_id.label("eid")).where(
        StepRun.journey_id == journey_id
    )
    if version is not None:
        runs = runs.where(StepRun.version == version)
    at_step = _scope(
        sa.select(Enrollment.current_step.label("step"), Enrollment.id.label("eid")).where(
            Enrollment.state.in_([EnrollmentState.ACTIVE, EnrollmentState.EXITED]),
            Enrollment.current_step.is_not(None),
        ),
        journey_id,
        version,
    )
    reached = sa.union(runs, at_step).subquery()
    converted = sa.case((Enrollment.converted_at.is_not(None), Enrollment.id))
    entered_rows = db.execute(
        sa.select(
            reached.c.step,
            sa.func.count(sa.distinct(reached.c.eid)),
            sa.func.count(sa.distinct(converted)),
        )
        .join(Enrollment, Enrollment.id == reached.c.eid)
        .group_by(reached.c.step)
    )
    entered = {step: (int(n), int(c)) for step, n, c in entered_rows}
    by_state = db.execute(
        _scope(
            sa.select(Enrollment.current_step, Enrollment.state, sa.func.count())
            .where(Enrollment.state.in_([EnrollmentState.ACTIVE, EnrollmentState.EXITED]))
            .group_by(Enrollment.current_step, Enrollment.state),
            journey_id,
            version,
        )
    )
    waiting: dict[str, int] = {}
    exited: dict[str, int] = {}
    for step, state, n in by_state:
        (waiting if state == EnrollmentState.ACTIVE else exited)[str(step)] = int(n)
    return [
        StepCounts(
            step_id=s.id,
            type=s.type,
            entered=entered.get(s.id, (0, 0))[0],
            waiting=waiting.get(s.id, 0),
            exited=exited.get(s.id, 0),
            converted=entered.get(s.id, (0, 0))[1],
        )
        for s in definition.steps
    ]


def compare_holdout(
    *, db_session: Session, journey_id: int, version: int | None = None
) -> HoldoutComparison:
    is_holdout = Enrollment.state == EnrollmentState.HOLDOUT
    query = _scope(
        sa.select(
            is_holdout.label("holdout"), sa.func.count(), sa.func.count(Enrollment.converted_at)
        ).group_by(is_holdout),
        journey_id,
        version,
    )
    groups = {
        bool(h): GroupRate(enrolled=int(n), converted=int(c))
        for h, n, c in db_session.execute(query)
    }
    return difference_interval(
        groups.get(False, GroupRate(0, 0)), groups.get(True, GroupRate(0, 0))
    )


def difference_interval(treatment: GroupRate, holdout: GroupRate) -> HoldoutComparison:
    """Uplift = treatment rate − holdout rate, with its 95% Wald interval."""
    p1, p2 = treatment.rate, holdout.rate
    variance = 0.0
    if treatment.enrolled:
        variance += p1 * (1 - p1) / treatment.enrolled
    if holdout.enrolled:
        variance += p2 * (1 - p2) / holdout.enrolled
    margin = Z_95 * math.sqrt(variance)
    uplift = p1 - p2
    return HoldoutComparison(
        treatment=treatment,
        holdout=holdout,
        uplift=uplift,
        ci_low=uplift - margin,
        ci_high=uplift + margin,
    )
