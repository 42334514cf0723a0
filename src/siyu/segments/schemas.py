"""Plain data the segments domain hands to adapters and other domains (no ORM rows leave it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Schedule(StrEnum):
    """How often a saved segment's snapshot is refreshed by `refresh_due_segments`."""

    MANUAL = "manual"
    HOURLY = "hourly"
    DAILY = "daily"


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class SampleMember:
    """A preview row; the name is masked (PIPL: the console never shows a full name here)."""

    member_id: int
    name: str
    gender: str | None
    store_code: str | None


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[SampleMember]
    elapsed_ms: int
    # How it was evaluated: "bitmap index", "bitmap index + SQL" (segments/bitmaps.py) or "SQL".
    answered_by: str = "SQL"


@dataclass(frozen=True)
class SegmentRead:
    id: int
    name: str
    description: str
    definition: dict[str, Any]
    owner: str
    schedule: Schedule
    created_at: datetime
    updated_at: datetime
    last_count: int | None = None
    last_refreshed_at: datetime | None = None


@dataclass(frozen=True)
class SnapshotRead:
    """One point of the count history, with how many entered and left since the one before."""

    taken_at: datetime
    member_count: int
    entered_count: int
    exited_count: int
    elapsed_ms: int


@dataclass(frozen=True)
class RefreshResult:
    """Outcome of one refresh; `entered`/`exited` are what segment-triggered journeys enroll."""

    segment: str
    refreshed: bool
    reason: str
    taken_at: datetime | None = None
    member_count: int = 0
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)
    elapsed_ms: int = 0


@dataclass(frozen=True)
class SegmentDiff:
    segment: str
    taken_at: datetime
    previous_at: datetime | None
    entered: list[int]
    exited: list[int]
