"""The worker hook refreshes every saved segment its schedule makes due (issue #4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from siyu.bootstrap import Siyu
from siyu.db import transaction
from siyu.journeys.worker import WORKER_HOOKS
from siyu.segments import refresh
from siyu.segments import service as segment_service
from siyu.segments.jobs import refresh_scheduled_segments
from siyu.segments.schemas import Schedule
from tests.factories import operational as op

NOW = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
WOMEN = {"attr": "gender", "op": "eq", "value": "F"}


def _save(siyu: Siyu, name: str, definition: dict[str, Any], schedule: Schedule) -> None:
    with transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db, name=name, definition=definition, now=NOW, owner="xiao.li",
            schedule=schedule,
        )  # fmt: skip


def _counts(siyu: Siyu, name: str) -> list[int]:
    with siyu.session_factory() as db:
        history = refresh.count_history(db_session=db, name=name)
    return [point.member_count for point in history]


def _hook(siyu: Siyu, at: datetime) -> int:
    return refresh_scheduled_segments(session_factory=siyu.session_factory, now=at)


def test_the_worker_runs_the_scheduled_refresh_hook() -> None:
    assert "siyu.segments.jobs:refresh_scheduled_segments" in WORKER_HOOKS


def test_due_scheduled_segments_are_snapshotted_and_manual_ones_are_not(siyu: Siyu) -> None:
    # Given Wang Fang in the operational store, a daily segment and a manual one
    with transaction(siyu.session_factory) as session:
        op.member(session, name="Wang Fang")
    _save(siyu, "women", WOMEN, Schedule.DAILY)
    _save(siyu, "women by hand", WOMEN, Schedule.MANUAL)
    # When the worker hook runs
    refreshed = _hook(siyu, NOW)
    # Then it synced the warehouse and snapshotted only the scheduled segment
    assert refreshed == 1
    assert _counts(siyu, "women") == [1]
    assert _counts(siyu, "women by hand") == []


def test_a_daily_segment_waits_a_day_then_sees_new_data(siyu: Siyu) -> None:
    # Given a daily segment snapshotted at NOW with Wang Fang
    with transaction(siyu.session_factory) as session:
        op.member(session, name="Wang Fang")
    _save(siyu, "women", WOMEN, Schedule.DAILY)
    _hook(siyu, NOW)
    # When Li Na joins: an hour later nothing is due, a day later the segment refreshes
    with transaction(siyu.session_factory) as session:
        op.member(session, name="Li Na", at=NOW + timedelta(minutes=30))
    an_hour_later = _hook(siyu, NOW + timedelta(hours=1))
    a_day_later = _hook(siyu, NOW + timedelta(days=1))
    # Then
    assert (an_hour_later, a_day_later) == (0, 1)
    assert sorted(_counts(siyu, "women")) == [1, 2]


def test_an_hourly_segment_with_a_window_refreshes_every_hour(siyu: Siyu) -> None:
    # Given an hourly segment of members registered within the last 30 days
    _save(siyu, "recent", {"attr": "registered_at", "within_days": 30}, Schedule.HOURLY)
    _hook(siyu, NOW)
    # When the worker runs an hour later with no new data
    refreshed = _hook(siyu, NOW + timedelta(hours=1))
    # Then the window moved, so it snapshotted again
    assert refreshed == 1
    assert len(_counts(siyu, "recent")) == 2
