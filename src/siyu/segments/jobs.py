"""Scheduled refresh of saved segments: the `siyu worker` hook (journeys.worker.WORKER_HOOKS).

`refresh_scheduled_segments(session_factory=, now=)` snapshots every saved segment whose
schedule (hourly/daily) makes it due — not only the segments journeys watch. `manual` segments
are left to `siyu segment refresh` / the console button.

Which warehouse: worker hooks receive only a session factory, so the hook looks up the settings
`bootstrap` built it from (`settings_for`), else reads SIYU_* from the environment like
`siyu worker` does. On DuckDB the file is opened for the pass, synced from the operational store
and closed again (the journeys refresher does the same), so a long-running worker does not hold
DuckDB's single-process lock; if another process holds it, this pass refreshes nothing and a
later pass does. On ClickHouse (SIYU_WAREHOUSE_URL clickhouse:// or chdb://) nothing is synced
here: ClickHouse is loaded by `siyu warehouse export-to-clickhouse` (ADR 0003); the connection
is kept for the life of the process.

The warehouse is opened only when some segment might be due (never refreshed, definition
changed, or its interval elapsed), so passes with nothing to do cost one small query.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.bootstrap import settings_for
from siyu.config import Settings
from siyu.segments.models import Segment
from siyu.segments.refresh import INTERVALS, definition_hash, refresh_segment
from siyu.segments.schemas import Schedule
from siyu.segments.service import Warehouse, latest_snapshot
from siyu.warehouse.clickhouse import ClickHouseWarehouse
from siyu.warehouse.duckdb import DuckDBWarehouse, WarehouseBusyError
from siyu.warehouse.sync import sync_all

log = logging.getLogger(__name__)
_clickhouse: dict[str, ClickHouseWarehouse] = {}


def refresh_scheduled_segments(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """Worker hook: snapshot the scheduled segments that are due; returns how many."""
    names = maybe_due(session_factory=session_factory, now=now)
    if not names:
        return 0
    settings = settings_for(session_factory) or Settings()
    if settings.clickhouse_url is not None:
        url = settings.clickhouse_url
        warehouse = _clickhouse.get(url) or _clickhouse.setdefault(
            url, ClickHouseWarehouse.from_url(url)
        )
        return _refresh(session_factory, warehouse, names, now, settings)
    duckdb = DuckDBWarehouse.from_url(settings.resolved_warehouse_url)
    try:
        duckdb.connection  # noqa: B018 — opening it is what may raise WarehouseBusyError
    except WarehouseBusyError:
        log.warning("warehouse busy: scheduled segment refresh postponed to a later pass")
        return 0
    try:
        sync_all(session_factory=session_factory, warehouse=duckdb, tz=settings.tz)
        return _refresh(session_factory, duckdb, names, now, settings)
    finally:
        duckdb.close()


def maybe_due(*, session_factory: sessionmaker[Session], now: datetime) -> list[str]:
    """Scheduled segments whose snapshot may be due at `now` (refresh_segment decides)."""
    names = []
    with session_factory() as db:
        scheduled = db.scalars(
            sa.select(Segment)
            .where(Segment.schedule != Schedule.MANUAL.value)
            .order_by(Segment.name)
        )
        for segment in scheduled:
            last = latest_snapshot(db, segment.id)
            interval = INTERVALS.get(Schedule(segment.schedule))
            if (
                last is None
                or last.definition_hash != definition_hash(segment.definition)
                or (interval is not None and now - last.taken_at >= interval)
            ):
                names.append(segment.name)
    return names


def _refresh(
    session_factory: sessionmaker[Session],
    warehouse: Warehouse,
    names: list[str],
    now: datetime,
    settings: Settings,
) -> int:
    refreshed = 0
    for name in names:
        result = refresh_segment(
            session_factory=session_factory,
            warehouse=warehouse,
            name=name,
            now=now,
            timezone=settings.tz,
        )
        refreshed += int(result.refreshed)
    return refreshed
