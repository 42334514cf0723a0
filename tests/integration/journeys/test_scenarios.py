"""Journeys run by the worker with an injected clock: months of a brand's life in seconds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery.models import OutboxMessage
from siyu.journeys.models import Enrollment, StepRun
from siyu.journeys.runtime import JourneyRuntime
from siyu.journeys.worker import run_once
from tests.factories.journeys import add_event, add_member, add_order, apply_journey, runtime_for

NEW_MEMBER_SOP = """
name: new-member-sop
title: New member SOP
trigger: {type: event, event: member_registered}
goal: {event: order_paid, within: {days: 14}}
steps:
  - {id: day1, type: wait, duration: {days: 1}}
  - id: welcome
    type: action
    action: send_message
    params:
      channel: sandbox
      body: "{{ member.name }}, welcome to Demo Tea: a gift awaits at {{ member.store_code }}"
  - {id: day3, type: wait, duration: {days: 2}}
  - id: ordered
    type: branch
    condition: {event: order_paid, within_days: 3}
    then: day7
    else: first-order-coupon
  - id: first-order-coupon
    type: action
    action: send_message
    params: {channel: sandbox, body: "{{ member.name }}, 20% off your first cup"}
  - {id: day7, type: wait, duration: {days: 4}}
  - id: tips
    type: action
    action: send_message
    params: {channel: sandbox, body: "Oolong or green? Our tea guide"}
"""


def _run_days(siyu: Siyu, runtime: JourneyRuntime, clock: FixedClock, days: int) -> None:
    for _ in range(days * 4):  # every 6 simulated hours
        run_once(runtime=runtime, channels={"sandbox": SandboxChannel()}, now=clock.now())
        clock.advance(timedelta(hours=6))


def _bodies(siyu: Siyu) -> list[str]:
    with transaction(siyu.session_factory) as db:
        return list(db.scalars(select(OutboxMessage.body).order_by(OutboxMessage.id)))


def test_new_member_without_an_order_gets_welcome_coupon_and_tips(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang registers at Demo Tea SH001 while the new-member SOP runs
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, NEW_MEMBER_SOP)
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=clock.now())
        add_event(db, member_id=wang, type="member_registered", at=clock.now())

    # when two simulated weeks pass
    _run_days(siyu, runtime, clock, 14)

    # then she got day 1, day 3 and day 7 messages, each exactly once
    assert _bodies(siyu) == [
        "Wang Fang, welcome to Demo Tea: a gift awaits at SH001",
        "Wang Fang, 20% off your first cup",
        "Oolong or green? Our tea guide",
    ]
    with transaction(siyu.session_factory) as db:
        enrollment = db.scalars(select(Enrollment)).one()
        assert enrollment.state == "completed"
        assert db.scalar(select(func.count()).select_from(StepRun)) == 7


def test_member_who_ordered_skips_the_first_order_coupon_and_converts(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, NEW_MEMBER_SOP)
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=clock.now())
        add_event(db, member_id=wang, type="member_registered", at=clock.now())
        add_order(db, member_id=wang, order_id="SH001-0001", at=clock.now() + timedelta(days=2))

    _run_days(siyu, runtime, clock, 14)

    assert _bodies(siyu) == [
        "Wang Fang, welcome to Demo Tea: a gift awaits at SH001",
        "Oolong or green? Our tea guide",
    ]
    with transaction(siyu.session_factory) as db:
        enrollment = db.scalars(select(Enrollment)).one()
        assert enrollment.converted_at is not None
