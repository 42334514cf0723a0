"""Tables of the journeys domain: journeys, their versions, enrollments, timers and step runs.

An active enrollment has exactly one timer (the step it will run next and when); a finished
one has none. Every mutation of an enrollment's progress locks the enrollment row first, which
is what keeps a step, an event wake-up and an exit from racing (ADR journeys-exactly-once).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.db import Base, BigId, UTCDateTime


class JourneyStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class EnrollmentState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    HOLDOUT = "holdout"


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=JourneyStatus.ACTIVE)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyVersion(Base):
    """An immutable published definition; enrollments finish on the version they started on."""

    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, object]] = mapped_column(JSON)
    source_text: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64), default="system")


class Enrollment(Base):
    """One member's run through one journey version; `occurrence_key` makes enrolling idempotent."""

    __tablename__ = "journey_enrollments"
    __table_args__ = (
        UniqueConstraint("journey_id", "member_id", "occurrence_key"),
        Index("ix_journey_enrollments_member_state", "member_id", "state"),
        Index("ix_journey_enrollments_journey_state", "journey_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    occurrence_key: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(16), default=EnrollmentState.ACTIVE)
    current_step: Mapped[str | None] = mapped_column(String(64), default=None)
    waiting_event: Mapped[str | None] = mapped_column(String(64), default=None)
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    context: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    visits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    exit_reason: Mapped[str | None] = mapped_column(String(120), default=None)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    goal_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class JourneyTimer(Base):
    """The next step of an active enrollment and when it is due; claimed with SKIP LOCKED."""

    __tablename__ = "journey_timers"
    # (due_at, id) is the claim's ORDER BY: with a backlog (every timer due, as after an
    # outage) the claim walks this index to its LIMIT instead of sorting every due timer.
    __table_args__ = (Index("ix_journey_timers_due_at_id", "due_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("journey_enrollments.id"), unique=True
    )
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id"))
    step_id: Mapped[str] = mapped_column(String(64))
    # why the timer fires: "run" a step, a wait_event "timeout", or the awaited "event" arrived
    reason: Mapped[str] = mapped_column(String(16), default="run")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StepRun(Base):
    """A step done; the UNIQUE key is the idempotency key every action carries."""

    __tablename__ = "journey_step_runs"
    __table_args__ = (
        UniqueConstraint("journey_id", "version", "step_id", "enrollment_id", "occurrence"),
        Index("ix_journey_step_runs_journey_step", "journey_id", "version", "step_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(64))
    enrollment_id: Mapped[int] = mapped_column(BigId, ForeignKey("journey_enrollments.id"))
    occurrence: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    outcome: Mapped[str] = mapped_column(String(200), default="done")
    is_holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JourneyCursor(Base):
    """Where a scan stopped: the event watermark, the last schedule slot, the last date scanned."""

    __tablename__ = "journey_cursors"

    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
