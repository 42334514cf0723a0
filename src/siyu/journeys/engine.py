"""The step engine: claim due timers, run each enrollment's steps, schedule its next wait.

Exactly once, by construction (docs/adr/journeys-exactly-once.md):
- A batch of due timers is claimed with `FOR UPDATE OF timers, enrollments SKIP LOCKED` on
  PostgreSQL, so concurrent workers take disjoint enrollments; SQLite has a single writer.
- Running a step deletes its timer, writes the step run (UNIQUE idempotency key), the action's
  effect (outbox row, tag, task…) and the next timer in ONE transaction. A crash before the
  commit leaves the timer due and nothing else; after it, the timer is gone. Either way each
  due step is done once.
- Waits are scheduled from the timer's due instant, not from when a late worker got to it, so
  "day 1/3/7/10" stays on schedule after an outage.
- A step that fails (a template error, a bad action parameter) ends that enrollment with the
  reason recorded on it and on a step run; it never blocks the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from siyu.db import transaction
from siyu.delivery import outbox
from siyu.journeys import timing
from siyu.journeys.actions import ActionContext, members_fields
from siyu.journeys.assignment import choose_path
from siyu.journeys.definition import (
    END,
    ActionStep,
    BranchStep,
    ExitStep,
    JourneyDefinition,
    SplitStep,
    WaitEventStep,
    WaitStep,
    WaitUntilStep,
)
from siyu.journeys.enrollment import finish
from siyu.journeys.errors import JourneyError
from siyu.journeys.models import (
    Enrollment,
    EnrollmentState,
    Journey,
    JourneyStatus,
    JourneyTimer,
    StepRun,
)
from siyu.journeys.runtime import JourneyRuntime

_BUFFER_KEY = "journeys.engine.buffer"
MAX_STEPS_PER_RUN = 200  # a definition that loops without waiting is stopped, not spun forever
WAITS = (WaitStep, WaitUntilStep, WaitEventStep)


@dataclass
class _Run:
    """One enrollment's progress inside the current transaction."""

    db: Session
    runtime: JourneyRuntime
    enrollment: Enrollment
    journey: str
    definition: JourneyDefinition
    now: datetime  # wall-clock instant of the worker (recorded on rows)
    logical: datetime  # the instant the step was due (waits are computed from it)
    member: Mapping[str, object] | None = None  # prefetched template fields of the member


def run_due_steps(
    *, runtime: JourneyRuntime, now: datetime, batch_size: int = 500, max_batches: int | None = None
) -> int:
    """Run every step due at `now`, batch by batch; returns the number of steps done."""
    done = batches = 0
    while max_batches is None or batches < max_batches:
        claimed, steps = _run_batch(runtime, now, batch_size)
        done += steps
        batches += 1
        if claimed < batch_size:
            break
    return done


def _run_batch(runtime: JourneyRuntime, now: datetime, batch_size: int) -> tuple[int, int]:
    try:
        with transaction(runtime.session_factory) as db:
            pairs = _claim(db, now, batch_size)
            members = _take(db, pairs)
            steps = sum(
                _advance(db, runtime, timer, enrollment, now, members)
                for timer, enrollment in pairs
            )
            _write_buffered(db)
            return len(pairs), steps
    except JourneyError:
        # One bad enrollment rolled the optimistic batch back: redo it one by one, isolating it.
        with transaction(runtime.session_factory) as db:
            pairs = _claim(db, now, batch_size)
            members = _take(db, pairs)
            return len(pairs), sum(
                _advance_isolated(db, runtime, t, e, now, members) for t, e in pairs
            )


def _take(
    db: Session, pairs: list[tuple[JourneyTimer, Enrollment]]
) -> dict[int, dict[str, object]]:
    """Delete the claimed timers in one statement and load the batch's member fields in one query.

    Both used to be per enrollment (a DELETE + flush, a SELECT per message), and every such
    statement also flushed the previous enrollment's inserts one by one; done up front, the
    batch's step runs, outbox rows and next timers are written together at commit. The timers
    stay claimed until then: the rows are locked (PostgreSQL) and the transaction is atomic.
    """
    if not pairs:
        return {}
    db.execute(
        delete(JourneyTimer)
        .where(JourneyTimer.id.in_([timer.id for timer, _ in pairs]))
        .execution_options(synchronize_session=False)
    )
    for timer, _ in pairs:
        db.expunge(timer)
    return members_fields(db_session=db, member_ids={e.member_id for _, e in pairs})


def _claim(db: Session, now: datetime, limit: int) -> list[tuple[JourneyTimer, Enrollment]]:
    query = (
        select(JourneyTimer, Enrollment)
        .join(Enrollment, Enrollment.id == JourneyTimer.enrollment_id)
        .join(Journey, Journey.id == JourneyTimer.journey_id)
        .where(JourneyTimer.due_at <= now, Journey.status == JourneyStatus.ACTIVE)
        .order_by(JourneyTimer.due_at, JourneyTimer.id)
        .limit(limit)
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=[JourneyTimer, Enrollment])
    return [(row[0], row[1]) for row in db.execute(query)]


def _advance_isolated(
    db: Session,
    runtime: JourneyRuntime,
    timer: JourneyTimer,
    enrollment: Enrollment,
    now: datetime,
    members: Mapping[int, Mapping[str, object]],
) -> int:
    try:
        with db.begin_nested():
            steps = _advance(db, runtime, timer, enrollment, now, members)
            _write_buffered(db)
            return steps
    except JourneyError as error:
        _buffer(db).clear()  # what the failed step had buffered was rolled back with it
        db.refresh(enrollment)
        journey, _ = runtime.definition(db, enrollment.journey_id, enrollment.version)
        _record(db, journey, enrollment, timer.step_id, f"failed: {error.message}"[:200], now)
        _write_buffered(db)
        finish(
            db_session=db,
            enrollment=enrollment,
            now=now,
            state=EnrollmentState.EXITED,
            reason=f"step {timer.step_id} failed: {error.message}"[:120],
        )
        return 1


def _advance(
    db: Session,
    runtime: JourneyRuntime,
    timer: JourneyTimer,
    enrollment: Enrollment,
    now: datetime,
    members: Mapping[int, Mapping[str, object]],
) -> int:
    """Run the enrollment from its (already deleted, see `_take`) timer to its next wait."""
    journey, definition = runtime.definition(db, enrollment.journey_id, enrollment.version)
    run = _Run(db, runtime, enrollment, journey, definition, now, timer.due_at)
    run.member = members.get(enrollment.member_id)
    step_id, reason = timer.step_id, timer.reason
    for count in range(MAX_STEPS_PER_RUN):
        if step_id == END:
            finish(
                db_session=db,
                enrollment=enrollment,
                now=now,
                state=EnrollmentState.COMPLETED,
                reason=None,
                timer_deleted=True,
            )
            return count
        step = definition.step(step_id)
        if isinstance(step, WAITS) and reason == "run":
            _schedule_wait(run, step)
            return count
        next_id = _execute(run, step, reason)
        if next_id is None:  # an exit step
            return count + 1
        step_id, reason = next_id, "run"
        _enter(run, step_id)
    finish(
        db_session=db,
        enrollment=enrollment,
        now=now,
        state=EnrollmentState.EXITED,
        reason=f"more than {MAX_STEPS_PER_RUN} steps without a wait",
        timer_deleted=True,
    )
    return MAX_STEPS_PER_RUN


def _enter(run: _Run, step_id: str) -> None:
    enrollment = run.enrollment
    enrollment.current_step = step_id
    enrollment.step_started_at = run.logical
    enrollment.waiting_event = None
    if step_id != END:
        visits = dict(enrollment.visits or {})
        visits[step_id] = visits.get(step_id, 0) + 1
        enrollment.visits = visits  # reassign: JSON columns do not track in-place mutation


def _schedule_wait(run: _Run, step: WaitStep | WaitUntilStep | WaitEventStep) -> None:
    start = run.enrollment.step_started_at or run.logical
    reason = "wake"
    if isinstance(step, WaitStep):
        due = start + step.duration.delta
    elif isinstance(step, WaitUntilStep):
        due = timing.wait_until(step, after=start, tz=run.runtime.tz)
    else:
        due, reason = start + step.timeout.delta, "timeout"
        run.enrollment.waiting_event = step.event
    _buffer(run.db).timers.append(
        {
            "enrollment_id": run.enrollment.id,
            "journey_id": run.enrollment.journey_id,
            "step_id": step.id,
            "reason": reason,
            "due_at": due,
        }
    )


def _execute(run: _Run, step: object, reason: str) -> str | None:
    """Do one step, record it, and return the id of the next step (None after an exit step)."""
    definition, enrollment = run.definition, run.enrollment
    if isinstance(step, WaitEventStep):
        received = reason == "event"
        target = (
            (step.on_event if received else step.on_timeout)
            or step.next
            or definition.following(step.id)
        )
        _record(
            run.db,
            run.journey,
            enrollment,
            step.id,
            "event received" if received else "timed out",
            run.now,
        )
        return target
    if isinstance(step, WaitStep | WaitUntilStep):
        _record(run.db, run.journey, enrollment, step.id, "waited", run.now)
        return step.next or definition.following(step.id)
    if isinstance(step, BranchStep):
        matched = run.runtime.conditions.matches(
            db_session=run.db, member_id=enrollment.member_id, dsl=step.condition, now=run.logical
        )
        _record(run.db, run.journey, enrollment, step.id, "then" if matched else "else", run.now)
        return step.then if matched else step.otherwise
    if isinstance(step, SplitStep):
        path = choose_path(
            journey=run.journey, step_id=step.id, member_id=enrollment.member_id, paths=step.paths
        )
        _record(run.db, run.journey, enrollment, step.id, f"path {path.next}", run.now)
        return path.next
    if isinstance(step, ActionStep):
        outcome = _act(run, step)
        _record(run.db, run.journey, enrollment, step.id, outcome, run.now)
        return step.next or definition.following(step.id)
    assert isinstance(step, ExitStep)
    _record(run.db, run.journey, enrollment, step.id, "exit", run.now)
    finish(
        db_session=run.db,
        enrollment=enrollment,
        now=run.now,
        state=EnrollmentState.EXITED,
        reason=f"exit step {step.id}",
        timer_deleted=True,
    )
    return None


def _act(run: _Run, step: ActionStep) -> str:
    enrollment = run.enrollment
    context = ActionContext(
        db_session=run.db,
        now=run.now,
        tz=run.runtime.tz,
        journey=run.journey,
        version=enrollment.version,
        step_id=step.id,
        enrollment_id=enrollment.id,
        member_id=enrollment.member_id,
        idempotency_key=idempotency_key(
            run.journey,
            enrollment.version,
            step.id,
            enrollment.id,
            _occurrence(enrollment, step.id),
        ),
        context=enrollment.context or {},
        member=run.member,
        outbox_rows=_buffer(run.db).outbox,
    )
    return run.runtime.actions.get(step.action).execute(context, step.params)[:200]


def idempotency_key(
    journey: str, version: int, step_id: str, enrollment_id: int, occurrence: int
) -> str:
    """(journey, version, step, enrollment, occurrence): the key every action carries."""
    return f"j:{journey}:v{version}:{step_id}:e{enrollment_id}:o{occurrence}"


def _occurrence(enrollment: Enrollment, step_id: str) -> int:
    return int((enrollment.visits or {}).get(step_id, 1))


def _record(
    db: Session, journey: str, enrollment: Enrollment, step_id: str, outcome: str, now: datetime
) -> None:
    occurrence = _occurrence(enrollment, step_id)
    _buffer(db).step_runs.append(
        {
            "journey_id": enrollment.journey_id,
            "version": enrollment.version,
            "step_id": step_id,
            "enrollment_id": enrollment.id,
            "occurrence": occurrence,
            "outcome": outcome,
            "is_holdout": False,
            "ran_at": now,
            "idempotency_key": idempotency_key(
                journey, enrollment.version, step_id, enrollment.id, occurrence
            ),
        }
    )


@dataclass
class _Buffer:
    """Step runs and next timers of the batch, written with one multi-row INSERT each.

    ORM objects cost more to build and flush than the steps themselves; these rows are never
    read back inside the batch, so plain dicts and a core INSERT do (same transaction).
    """

    step_runs: list[dict[str, object]] = field(default_factory=list)
    timers: list[dict[str, object]] = field(default_factory=list)
    outbox: list[dict[str, object]] = field(default_factory=list)  # messages actions queued

    def clear(self) -> None:
        self.step_runs.clear()
        self.timers.clear()
        self.outbox.clear()


def _buffer(db: Session) -> _Buffer:
    found = db.info.get(_BUFFER_KEY)
    if found is None:
        found = db.info[_BUFFER_KEY] = _Buffer()
    assert isinstance(found, _Buffer)
    return found


def _write_buffered(db: Session) -> None:
    buffer = _buffer(db)
    if buffer.step_runs:
        db.execute(insert(_table(StepRun)), buffer.step_runs)
    if buffer.timers:
        db.execute(insert(_table(JourneyTimer)), buffer.timers)
    outbox.insert_rows(db_session=db, rows=buffer.outbox)
    buffer.clear()


def _table(model: type[StepRun] | type[JourneyTimer]) -> Table:
    return cast(Table, model.__table__)
