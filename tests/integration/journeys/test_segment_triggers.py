"""Segment entry/exit triggers: the worker syncs, snapshots the watched segment, and enrolls who
entered (or left) it — once per snapshot, however often the pass is repeated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery.models import OutboxMessage
from siyu.identity.models import Member
from siyu.journeys import service as journey_service
from siyu.journeys.errors import JourneyError
from siyu.journeys.runtime import JourneyRuntime
from siyu.journeys.triggers import run_segment_triggers
from siyu.journeys.worker import run_once
from tests.factories.journeys import add_member, apply_journey, runtime_for

pytest.importorskip("siyu.segments.refresh")
from siyu.segments import service as segment_service

STORE_WELCOME = """
name: store-welcome
trigger: {type: segment_entry, segment: sh001-members}
steps:
  - id: hello
    type: action
    action: send_message
    params: {body: "{{ member.name }}, welcome to Demo Tea SH001 — Xiao Li"}
"""
STORE_FAREWELL = """
name: store-farewell
trigger: {type: segment_exit, segment: sh001-members}
steps:
  - {id: bye, type: action, action: send_message, params: {body: "{{ member.name }}, see you"}}
"""


def _given_segment(siyu: Siyu) -> None:
    with transaction(siyu.session_factory) as db:
        segment_service.save_segment(
            db_session=db,
            name="sh001-members",
            definition={"attr": "store_code", "op": "eq", "value": "SH001"},
            now=siyu.clock.now(),
            owner="xiao.li",
        )


def _member(siyu: Siyu, name: str, store: str) -> int:
    with transaction(siyu.session_factory) as db:
        return add_member(db, name=name, registered_at=siyu.clock.now(), store_code=store)


def _pass(runtime: JourneyRuntime, clock: FixedClock) -> None:
    run_once(runtime=runtime, channels={"sandbox": SandboxChannel()}, now=clock.now())


def _bodies(siyu: Siyu) -> list[str]:
    with transaction(siyu.session_factory) as db:
        return list(db.scalars(select(OutboxMessage.body).order_by(OutboxMessage.id)))


def test_members_entering_a_segment_are_enrolled_once_per_snapshot(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang at SH001, Zhang Wei at SH002, and a journey on entering "sh001-members"
    _member(siyu, "Wang Fang", "SH001")
    _member(siyu, "Zhang Wei", "SH002")
    _given_segment(siyu)
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, STORE_WELCOME)

    # when the worker passes (twice at the same instant), then Li Na joins SH001 the next day
    clock.advance(timedelta(hours=1))
    _pass(runtime, clock)
    _pass(runtime, clock)
    _member(siyu, "Li Na", "SH001")
    clock.advance(timedelta(days=1))
    _pass(runtime, clock)
    _pass(runtime, clock)

    # then each entrant got exactly one welcome, Zhang Wei none
    assert _bodies(siyu) == [
        "Wang Fang, welcome to Demo Tea SH001 — Xiao Li",
        "Li Na, welcome to Demo Tea SH001 — Xiao Li",
    ]


def test_a_member_leaving_the_segment_triggers_the_exit_journey(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang in "sh001-members", already snapshotted, and an exit journey
    wang_fang = _member(siyu, "Wang Fang", "SH001")
    _given_segment(siyu)
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, STORE_FAREWELL)
    clock.advance(timedelta(hours=1))
    _pass(runtime, clock)

    # when she moves to SH002 and a day later the segment is snapshotted again
    with transaction(siyu.session_factory) as db:
        db.execute(
            update(Member)
            .where(Member.id == wang_fang)
            .values(store_code="SH002", updated_at=clock.now())
        )
    clock.advance(timedelta(days=1))
    _pass(runtime, clock)

    # then she gets the farewell, once
    assert _bodies(siyu) == ["Wang Fang, see you"]


def test_snapshots_taken_while_the_journey_is_paused_enroll_nobody(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given a paused entry journey, and Wang Fang entering the segment meanwhile
    _given_segment(siyu)
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, STORE_WELCOME)
    with transaction(siyu.session_factory) as db:
        journey_service.pause(db_session=db, name="store-welcome", now=clock.now())
    _member(siyu, "Wang Fang", "SH001")
    clock.advance(timedelta(hours=1))
    assert runtime.refresh_segments is not None
    runtime.refresh_segments(["sh001-members"], clock.now())
    _pass(runtime, clock)

    # when it is resumed and the worker passes again
    with transaction(siyu.session_factory) as db:
        journey_service.resume(db_session=db, name="store-welcome", now=clock.now())
    _pass(runtime, clock)

    # then her entry, which happened while paused, is not replayed
    assert run_segment_triggers(runtime=runtime, now=clock.now()) == 0
    assert _bodies(siyu) == []


def test_a_journey_on_an_unknown_segment_is_refused(siyu: Siyu) -> None:
    runtime = runtime_for(siyu)
    with pytest.raises(JourneyError, match="no saved segment named 'sh001-members'"):
        apply_journey(siyu, runtime, STORE_WELCOME)
