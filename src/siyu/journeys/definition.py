"""What a journey definition may say, validated with Pydantic (the YAML/JSON an operator writes).

A definition has one trigger, an ordered list of steps (each step goes to the next one in the
list unless it names another with `next`; `end` finishes the enrollment), exit events, an
optional goal with a conversion window, a holdout share, and a re-entry policy.

Decisions where the issue is silent:
- Step ids are unique inside a definition; every `next`/branch target must name a step or `end`.
- A holdout member is enrolled (so conversions can be compared) but runs no step at all.
- `wait_until` picks the first instant strictly after the step starts that matches the time of
  day (and weekday) in the business time zone.
- `wait_event` waits for an event of the member that occurs after the step started; the timeout
  branch is taken when none arrives in time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

END = "end"
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """A duration written as days/hours/minutes (e.g. `{days: 3}`)."""

    days: int = 0
    hours: int = 0
    minutes: int = 0

    @model_validator(mode="after")
    def _not_negative(self) -> Duration:
        if min(self.days, self.hours, self.minutes) < 0:
            raise ValueError("a duration cannot be negative")
        return self

    @property
    def delta(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Monday = 0, as `date.weekday()` counts."""
        return list(Weekday).index(self)


# ---------------------------------------------------------------- triggers


class EventTrigger(_Strict):
    type: Literal["event"]
    event: str
    where: dict[str, Any] = Field(default_factory=dict, description="property equals value")


class SegmentTrigger(_Strict):
    """Entering (or leaving) a saved segment of the segments domain, as its snapshots record it.

    Only saved segments: their snapshots are the durable record of who entered and left when,
    which is what makes enrolling from them exactly-once (see `triggers.run_segment_triggers`).
    """

    type: Literal["segment_entry", "segment_exit"]
    segment: str = Field(min_length=1, max_length=128)


class DateAttributeTrigger(_Strict):
    """Birthday or registration anniversary, `offset_days` before (negative) or after."""

    type: Literal["date_attribute"]
    attribute: Literal["birthday", "registered_at"]
    offset_days: int = 0
    at: time = time(10, 0)


class ScheduleTrigger(_Strict):
    """A broadcast to an audience: once at `start`, or every day/week/month from `start`."""

    type: Literal["schedule"]
    every: Literal["once", "day", "week", "month"] = "once"
    start: datetime
    audience: dict[str, Any] = Field(default_factory=dict, description="segment DSL; {} = all")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start needs an offset, e.g. 2026-07-01T10:00:00+08:00")
        return value


Trigger = Annotated[
    EventTrigger | SegmentTrigger | DateAttributeTrigger | ScheduleTrigger,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- steps


class _Step(_Strict):
    id: str
    next: str | None = None

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _STEP_ID.match(value) or value == END:
            raise ValueError(f"step id {value!r}: lowercase letters, digits, _ or - (not 'end')")
        return value

    def targets(self) -> list[str]:
        return [self.next] if self.next else []


class WaitStep(_Step):
    type: Literal["wait"]
    duration: Duration


class WaitUntilStep(_Step):
    type: Literal["wait_until"]
    time: time
    weekday: Weekday | None = None
    on_date: date | None = None


class WaitEventStep(_Step):
    type: Literal["wait_event"]
    event: str
    timeout: Duration
    on_event: str | None = None
    on_timeout: str | None = None

    def targets(self) -> list[str]:
        return [t for t in (self.next, self.on_event, self.on_timeout) if t]


class BranchStep(_Step):
    """Go to `then` when the member matches the segment DSL condition, else to `else`."""

    type: Literal["branch"]
    condition: dict[str, Any]
    then: str
    otherwise: str = Field(alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def targets(self) -> list[str]:
        return [self.then, self.otherwise]


class SplitPath(_Strict):
    weight: int = Field(gt=0)
    next: str


class SplitStep(_Step):
    """Random split by a stable hash of the member id: the same member always takes one path."""

    type: Literal["split"]
    paths: list[SplitPath] = Field(min_length=2)

    def targets(self) -> list[str]:
        return [p.next for p in self.paths]


class ActionStep(_Step):
    type: Literal["action"]
    action: str
    params: dict[str, Any] = Field(default_factory=dict)


class ExitStep(_Step):
    type: Literal["exit"]


Step = Annotated[
    WaitStep | WaitUntilStep | WaitEventStep | BranchStep | SplitStep | ActionStep | ExitStep,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- the journey


class Goal(_Strict):
    event: str
    within: Duration = Duration(days=14)
    exit_on_goal: bool = False


class ReEntry(StrEnum):
    NEVER = "never"  # a member is enrolled at most once, ever
    AFTER_EXIT = "after_exit"  # again once the previous enrollment has finished
    ALWAYS = "always"  # every trigger occurrence enrolls (parallel enrollments allowed)


class JourneyDefinition(_Strict):
    name: str
    title: str = ""
    description: str = ""
    trigger: Trigger
    steps: list[Step] = Field(min_length=1)
    exit_on: list[str] = Field(default_factory=list, description="event types that end it")
    goal: Goal | None = None
    holdout_percent: float = Field(default=0, ge=0, le=50)
    reentry: ReEntry = ReEntry.NEVER
    reentry_cooldown: Duration | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"journey name {value!r}: lowercase letters, digits, _ or -")
        return value

    @model_validator(mode="after")
    def _targets_exist(self) -> JourneyDefinition:
        ids = [s.id for s in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate step ids: {', '.join(duplicates)}")
        known = set(ids) | {END}
        for step in self.steps:
            for target in step.targets():
                if target not in known:
                    raise ValueError(f"step {step.id!r} goes to unknown step {target!r}")
        return self

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def following(self, step_id: str) -> str:
        """The step after `step_id` in list order, or `end` after the last one."""
        ids = [s.id for s in self.steps]
        position = ids.index(step_id)
        return ids[position + 1] if position + 1 < len(ids) else END

    def action_kinds(self) -> set[str]:
        return {s.action for s in self.steps if isinstance(s, ActionStep)}
