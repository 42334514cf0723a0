"""Snapshots of saved segments: refresh when due, count history, who entered and who left.

Journeys call `refresh_due_segments` (or `refresh_segment`) and enroll the `entered` / `exited`
ids of each result (`siyu.journeys.triggers.enroll_segment_changes`).

Decisions where the issue is silent:
- A refresh is due when there is no snapshot yet, when the definition changed, or when the
  schedule interval (hourly, daily) has passed since the last snapshot AND either the segment has
  a time window (events within N days, lifecycle, RFM, age, coupons, any nested segment — its
  window moves with the clock even if no data changed) or the warehouse data changed (the sync
  watermarks differ). `manual` segments refresh only on request (`force`).
- The full member set is kept for the latest `KEEP_FULL_SNAPSHOTS` snapshots; older snapshots
  keep their count and entered/exited sets (the count history) and drop the full bitmap.
- Diffs are against the previous snapshot; the first snapshot has everyone entering.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.segments import snapshots
from siyu.segments.dsl import parse_definition, references, windowed
from siyu.segments.errors import SegmentError, SegmentErrorCode
from siyu.segments.models import Segment, SegmentSnapshot
from siyu.segments.schemas import RefreshResult, Schedule, SegmentDiff, SnapshotRead
from siyu.segments.service import (
    SHANGHAI,
    Warehouse,
    evaluate_member_ids,
    get_row,
    latest_snapshot,
)

KEEP_FULL_SNAPSHOTS = 2
INTERVALS = {Schedule.HOURLY: timedelta(hours=1), Schedule.DAILY: timedelta(days=1)}


def refresh_segment(
    *,
    session_factory: sessionmaker[Session],
    warehouse: Warehouse,
    name: str,
    now: datetime,
    force: bool = False,
    timezone: ZoneInfo = SHANGHAI,
) -> RefreshResult:
    """Take a snapshot if one is due (or forced): count, members, entered and exited."""
    with transaction(session_factory) as db:
        segment = get_row(db, name)
        last = latest_snapshot(db, segment.id)
        version = data_version(warehouse)
        reason = refresh_reason(segment=segment, last=last, now=now, version=version, force=force)
        if reason is None:
            return RefreshResult(segment=name, refreshed=False, reason="not due")
        if last is not None and last.taken_at >= now:
            # One snapshot per instant: replaying a refresh at the same `now` adds nothing.
            return RefreshResult(segment=name, refreshed=False, reason="not after last snapshot")
        started = time.perf_counter()
        current = snapshots.BitMap64(
            evaluate_member_ids(
                warehouse=warehouse,
                definition=segment.definition,
                now=now,
                session=db,
                timezone=timezone,
            )
        )
        change = snapshots.diff(snapshots.decode(last.members if last else None), current)
        elapsed = round((time.perf_counter() - started) * 1000)
        db.add(
            SegmentSnapshot(
                segment_id=segment.id,
                taken_at=now,
                member_count=len(current),
                entered_count=len(change.entered),
                exited_count=len(change.exited),
                members=snapshots.encode(current),
                entered=snapshots.encode(change.entered),
                exited=snapshots.encode(change.exited),
                data_version=version,
                definition_hash=definition_hash(segment.definition),
                elapsed_ms=elapsed,
            )
        )
        db.flush()
        _prune(db, segment.id)
    return RefreshResult(
        segment=name,
        refreshed=True,
        reason=reason,
        taken_at=now,
        member_count=len(current),
        entered=list(change.entered),
        exited=list(change.exited),
        elapsed_ms=elapsed,
    )


def refresh_due_segments(
    *,
    session_factory: sessionmaker[Session],
    warehouse: Warehouse,
    now: datetime,
    timezone: ZoneInfo = SHANGHAI,
) -> list[RefreshResult]:
    """Refresh every saved segment that is due; each segment in its own transaction."""
    with session_factory() as db:
        names = list(db.scalars(sa.select(Segment.name).order_by(Segment.name)))
    results = []
    for name in names:
        result = refresh_segment(
            session_factory=session_factory,
            warehouse=warehouse,
            name=name,
            now=now,
            timezone=timezone,
        )
        if result.refreshed:
            results.append(result)
    return results


def refresh_reason(
    *, segment: Segment, last: SegmentSnapshot | None, now: datetime, version: str, force: bool
) -> str | None:
    """Why a new snapshot is due now, or None when the last one still stands."""
    if last is None:
        return "first snapshot"
    if force:
        return "requested"
    if last.definition_hash != definition_hash(segment.definition):
        return "definition changed"
    interval = INTERVALS.get(Schedule(segment.schedule))
    if interval is None or now - last.taken_at < interval:
        return None
    condition = parse_definition(segment.definition)
    if windowed(condition) or references(condition):
        return "window moved"
    if last.data_version != version:
        return "data changed"
    return None


def segment_diff(*, db_session: Session, name: str, at: datetime | None = None) -> SegmentDiff:
    """Who entered and who left at the latest snapshot (or the one taken at `at`)."""
    segment = get_row(db_session, name)
    select = sa.select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment.id)
    if at is not None:
        select = select.where(SegmentSnapshot.taken_at <= at)
    rows = list(db_session.scalars(select.order_by(SegmentSnapshot.taken_at.desc()).limit(2)))
    if not rows:
        raise SegmentError(
            f"segment {name!r} has no snapshot yet", code=SegmentErrorCode.NO_SNAPSHOT
        )
    current = rows[0]
    return SegmentDiff(
        segment=name,
        taken_at=current.taken_at,
        previous_at=rows[1].taken_at if len(rows) > 1 else None,
        entered=list(snapshots.decode(current.entered)),
        exited=list(snapshots.decode(current.exited)),
    )


def count_history(*, db_session: Session, name: str, limit: int = 90) -> list[SnapshotRead]:
    """The segment's counts over time, oldest first (the detail page's chart)."""
    segment = get_row(db_session, name)
    rows = db_session.execute(
        sa.select(
            SegmentSnapshot.taken_at,
            SegmentSnapshot.member_count,
            SegmentSnapshot.entered_count,
            SegmentSnapshot.exited_count,
            SegmentSnapshot.elapsed_ms,
        )
        .where(SegmentSnapshot.segment_id == segment.id)
        .order_by(SegmentSnapshot.taken_at.desc())
        .limit(limit)
    )
    return [SnapshotRead(*row) for row in reversed(list(rows))]


def snapshot_members(*, db_session: Session, name: str) -> set[int]:
    """The member set of the latest snapshot (what a journey or export may reuse)."""
    last = latest_snapshot(db_session, get_row(db_session, name).id)
    if last is None:
        raise SegmentError(
            f"segment {name!r} has no snapshot yet", code=SegmentErrorCode.NO_SNAPSHOT
        )
    return set(snapshots.decode(last.members))


def data_version(warehouse: Warehouse) -> str:
    """A fingerprint of the warehouse sync watermarks: it changes when synced data changes."""
    rows = warehouse.query("SELECT name, watermark FROM sync_state ORDER BY name")
    text = json.dumps([[str(n), int(w)] for n, w in rows])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def definition_hash(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _prune(db_session: Session, segment_id: int) -> None:
    """Drop the full member bitmap of all but the latest snapshots (counts and diffs stay)."""
    keep = (
        sa.select(SegmentSnapshot.id)
        .where(SegmentSnapshot.segment_id == segment_id)
        .order_by(SegmentSnapshot.taken_at.desc())
        .limit(KEEP_FULL_SNAPSHOTS)
    )
    db_session.execute(
        sa.update(SegmentSnapshot)
        .where(
            SegmentSnapshot.segment_id == segment_id,
            SegmentSnapshot.members.is_not(None),
            SegmentSnapshot.id.not_in(keep.scalar_subquery()),
        )
        .values(members=None)
    )
