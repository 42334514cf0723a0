"""What leaves the journeys domain: plain dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class JourneyRead:
    id: int
    name: str
    title: str
    status: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    definition: dict[str, object] = field(default_factory=dict)
    source_text: str = ""


@dataclass(frozen=True)
class ApplyResult:
    journey: JourneyRead
    outcome: str  # created | new_version | unchanged


@dataclass(frozen=True)
class StepCounts:
    step_id: str
    type: str
    entered: int
    waiting: int
    exited: int
    converted: int


@dataclass(frozen=True)
class GroupRate:
    enrolled: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.enrolled if self.enrolled else 0.0


@dataclass(frozen=True)
class HoldoutComparison:
    treatment: GroupRate
    holdout: GroupRate
    uplift: float  # treatment rate minus holdout rate
    ci_low: float
    ci_high: float
    confidence: float = 0.95

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class JourneyStats:
    name: str
    version: int | None
    enrollments: dict[str, int]
    steps: list[StepCounts]
    comparison: HoldoutComparison | None


@dataclass(frozen=True)
class MessagePreview:
    """A send_message step rendered for one member; `error` instead of text when it fails."""

    step_id: str
    channel: str
    subject: str
    body: str
    error: str | None = None
