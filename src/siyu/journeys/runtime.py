"""What the engine needs to run (composed once per worker) and the cache of published versions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from siyu.clock import Clock
from siyu.journeys.actions import ActionRegistry
from siyu.journeys.conditions import ConditionEvaluator, StoreConditions
from siyu.journeys.definition import JourneyDefinition
from siyu.journeys.models import Journey, JourneyVersion


@dataclass
class JourneyRuntime:
    session_factory: sessionmaker[Session]
    clock: Clock
    tz: ZoneInfo
    actions: ActionRegistry
    conditions: ConditionEvaluator = field(default_factory=StoreConditions)
    # Takes due snapshots of the named saved segments (the composition root wires the segments
    # domain and the warehouse in); None where segments are not available.
    refresh_segments: Callable[[Sequence[str], datetime], object] | None = None
    # Published versions never change, so caching them for the life of a worker is safe.
    _versions: dict[tuple[int, int], tuple[str, JourneyDefinition]] = field(default_factory=dict)

    def definition(
        self, db_session: Session, journey_id: int, version: int
    ) -> tuple[str, JourneyDefinition]:
        key = (journey_id, version)
        if key not in self._versions:
            row = db_session.execute(
                select(Journey.name, JourneyVersion.definition)
                .join(JourneyVersion, JourneyVersion.journey_id == Journey.id)
                .where(Journey.id == journey_id, JourneyVersion.version == version)
            ).one()
            self._versions[key] = (row.name, JourneyDefinition.model_validate(row.definition))
        return self._versions[key]
