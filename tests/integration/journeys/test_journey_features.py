"""Definition features run by the worker against an injected clock (Thursday 2026-06-18 10:00
Shanghai): wait for an event with a timeout, wait until a weekday morning, birthday and weekly
schedule triggers, re-entry, versioning, exit events, pause/resume, goal window and holdout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.clock import FixedClock
from siyu.db import transaction
from siyu.delivery.models import OutboxMessage
from siyu.journeys import service as journey_service
from siyu.journeys import stats
from siyu.journeys.assignment import in_holdout
from siyu.journeys.models import Enrollment, StepRun
from siyu.journeys.runtime import JourneyRuntime
from siyu.journeys.worker import run_once
from tests.factories.journeys import add_event, add_member, add_order, apply_journey, runtime_for

SANDBOX = {"sandbox": SandboxChannel()}


def _pass(runtime: JourneyRuntime, at: datetime) -> None:
    run_once(runtime=runtime, channels=SANDBOX, now=at, hooks=())


def _run_days(runtime: JourneyRuntime, clock: FixedClock, days: int) -> None:
    for _ in range(days * 4):  # every 6 simulated hours
        _pass(runtime, clock.now())
        clock.advance(timedelta(hours=6))


def _messages(siyu: Siyu) -> list[tuple[int | None, str]]:
    with transaction(siyu.session_factory) as db:
        rows = db.execute(
            select(OutboxMessage.member_id, OutboxMessage.body).order_by(OutboxMessage.id)
        )
        return [(member_id, body) for member_id, body in rows]


def _register(siyu: Siyu, name: str, at: datetime) -> int:
    with transaction(siyu.session_factory) as db:
        member_id = add_member(db, name=name, registered_at=at)
        add_event(db, member_id=member_id, type="member_registered", at=at)
    return member_id


WAIT_FOR_ORDER = """
name: nudge-first-order
trigger: {type: event, event: member_registered}
steps:
  - {id: await-order, type: wait_event, event: order_paid, timeout: {days: 3},
     on_event: thanks, on_timeout: coupon}
  - {id: coupon, type: action, action: send_message, next: end,
     params: {body: "{{ member.name }}, 20% off your first cup"}}
  - {id: thanks, type: action, action: send_message, params: {body: "Thanks {{ member.name }}"}}
"""


def test_wait_event_takes_the_event_path_when_the_member_orders_in_time(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang registers and the journey waits up to 3 days for her first order
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WAIT_FOR_ORDER)
    wang = _register(siyu, "Wang Fang", clock.now())
    with transaction(siyu.session_factory) as db:
        add_order(db, member_id=wang, order_id="SH001-0001", at=clock.now() + timedelta(days=1))

    # when a week passes
    _run_days(runtime, clock, 7)

    # then she is thanked, and never gets the coupon
    assert _messages(siyu) == [(wang, "Thanks Wang Fang")]


def test_wait_event_takes_the_timeout_path_when_nothing_arrives(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WAIT_FOR_ORDER)
    wang = _register(siyu, "Wang Fang", clock.now())
    registered = clock.now()

    _run_days(runtime, clock, 7)

    assert _messages(siyu) == [(wang, "Wang Fang, 20% off your first cup")]
    with transaction(siyu.session_factory) as db:
        sent_at = db.scalar(select(OutboxMessage.created_at))
    # the timeout fires on the first pass at or after registration + 3 days
    assert sent_at == registered + timedelta(days=3)


MONDAY_TIPS = """
name: monday-tips
trigger: {type: event, event: member_registered}
steps:
  - {id: monday-morning, type: wait_until, time: "09:30", weekday: monday}
  - {id: tips, type: action, action: send_message, params: {body: "Monday tea tips"}}
"""


def test_wait_until_holds_the_step_to_the_next_monday_morning_in_shanghai(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang registers on Thursday 2026-06-18 10:00 Shanghai
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, MONDAY_TIPS)
    _register(siyu, "Wang Fang", clock.now())
    _pass(runtime, clock.now())

    # when the worker runs at Monday 09:29 and then 09:30 Shanghai (01:29 / 01:30 UTC)
    _pass(runtime, datetime(2026, 6, 22, 1, 29, tzinfo=UTC))
    before = len(_messages(siyu))
    _pass(runtime, datetime(2026, 6, 22, 1, 30, tzinfo=UTC))

    # then the tips go out at 09:30, not a minute earlier
    assert before == 0
    assert [body for _, body in _messages(siyu)] == ["Monday tea tips"]


BIRTHDAY = """
name: birthday-gift
trigger: {type: date_attribute, attribute: birthday, at: "10:00"}
steps:
  - {id: gift, type: action, action: send_message,
     params: {body: "Happy birthday {{ member.name }}, a cup on us today"}}
"""


def test_birthday_trigger_greets_each_member_once_on_her_birthday(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang's birthday is 20 June and Li Na's is in December
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, BIRTHDAY)
    with transaction(siyu.session_factory) as db:
        wang = add_member(
            db, name="Wang Fang", registered_at=clock.now(), birthday=date(1990, 6, 20)
        )
        add_member(db, name="Li Na", registered_at=clock.now(), birthday=date(1988, 12, 1))

    # when five days pass, the worker running every 6 hours
    _run_days(runtime, clock, 5)

    # then only Wang Fang is greeted, once, at 10:00 on 20 June
    assert _messages(siyu) == [(wang, "Happy birthday Wang Fang, a cup on us today")]
    with transaction(siyu.session_factory) as db:
        enrollment = db.scalars(select(Enrollment)).one()
    assert enrollment.entered_at == datetime(2026, 6, 20, 2, 0, tzinfo=UTC)


ANNIVERSARY = """
name: membership-anniversary
trigger: {type: date_attribute, attribute: registered_at, offset_days: -1, at: "09:00"}
steps:
  - {id: note, type: action, action: send_message,
     params: {body: "{{ member.name }}, tomorrow is your Demo Tea anniversary"}}
"""


def test_anniversary_trigger_fires_the_day_before_for_members_of_a_year_or_more(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang joined on 20 June 2025 and Li Na joins today
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, ANNIVERSARY)
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=datetime(2025, 6, 20, 3, tzinfo=UTC))
        add_member(db, name="Li Na", registered_at=clock.now())

    # when five days pass
    _run_days(runtime, clock, 5)

    # then only Wang Fang hears from us, on 19 June at 09:00
    assert _messages(siyu) == [(wang, "Wang Fang, tomorrow is your Demo Tea anniversary")]
    with transaction(siyu.session_factory) as db:
        entered = db.scalar(select(Enrollment.entered_at))
    assert entered == datetime(2026, 6, 19, 1, 0, tzinfo=UTC)


WEEKLY = """
name: weekly-newsletter
trigger: {type: schedule, every: week, start: "2026-06-19T10:00:00+08:00"}
reentry: after_exit
steps:
  - {id: letter, type: action, action: send_message, params: {body: "This week at Demo Tea"}}
"""


def test_weekly_schedule_enrolls_the_audience_once_per_week(siyu: Siyu, clock: FixedClock) -> None:
    # given two members and a weekly newsletter from Friday 19 June
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WEEKLY)
    with transaction(siyu.session_factory) as db:
        add_member(db, name="Wang Fang", registered_at=clock.now())
        add_member(db, name="Li Na", registered_at=clock.now())

    # when 16 days pass (slots 19 June, 26 June, 3 July)
    _run_days(runtime, clock, 16)

    # then each member got the letter three times, never twice for one week
    assert len(_messages(siyu)) == 6
    with transaction(siyu.session_factory) as db:
        keys = sorted(set(db.scalars(select(Enrollment.occurrence_key))))
    assert keys == [
        "schedule:2026-06-19T02:00:00+00:00",
        "schedule:2026-06-26T02:00:00+00:00",
        "schedule:2026-07-03T02:00:00+00:00",
    ]


def _journey_on_signup(reentry: str) -> str:
    return f"""
name: signup-hello
trigger: {{type: event, event: app_opened}}
reentry: {reentry}
steps:
  - {{id: hello, type: action, action: send_message, params: {{body: "Hello again"}}}}
"""


def _open_app_twice(siyu: Siyu, clock: FixedClock, runtime: JourneyRuntime) -> int:
    wang = _register(siyu, "Wang Fang", clock.now())
    with transaction(siyu.session_factory) as db:
        add_event(db, member_id=wang, type="app_opened", at=clock.now())
    _run_days(runtime, clock, 1)
    with transaction(siyu.session_factory) as db:
        add_event(db, member_id=wang, type="app_opened", at=clock.now())
    _run_days(runtime, clock, 1)
    return wang


def test_reentry_never_enrolls_a_member_only_once(siyu: Siyu, clock: FixedClock) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, _journey_on_signup("never"))

    _open_app_twice(siyu, clock, runtime)

    assert len(_messages(siyu)) == 1


def test_reentry_after_exit_enrolls_again_once_the_first_run_finished(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, _journey_on_signup("after_exit"))

    _open_app_twice(siyu, clock, runtime)

    assert len(_messages(siyu)) == 2


GREETING_V1 = """
name: greeting
trigger: {type: event, event: member_registered}
steps:
  - {id: wait, type: wait, duration: {days: 2}}
  - {id: hello, type: action, action: send_message, params: {body: "v1 hello"}}
"""


def test_running_enrollments_finish_on_the_version_they_started(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given Wang Fang enrolled on version 1
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, GREETING_V1)
    wang = _register(siyu, "Wang Fang", clock.now())
    _run_days(runtime, clock, 1)

    # when version 2 changes the message and Li Na registers after it
    apply_journey(siyu, runtime, GREETING_V1.replace("v1 hello", "v2 hello"))
    li = _register(siyu, "Li Na", clock.now())
    _run_days(runtime, clock, 4)

    # then each finishes on her own version
    assert sorted(_messages(siyu)) == sorted([(wang, "v1 hello"), (li, "v2 hello")])
    with transaction(siyu.session_factory) as db:
        versions = dict(db.execute(select(Enrollment.member_id, Enrollment.version)).all())
    assert versions == {wang: 1, li: 2}


EXIT_ON_ORDER = """
name: first-order-reminder
trigger: {type: event, event: member_registered}
exit_on: [order_paid]
steps:
  - {id: wait, type: wait, duration: {days: 3}}
  - {id: remind, type: action, action: send_message, params: {body: "Your first cup awaits"}}
"""


def test_an_exit_event_ends_the_enrollment_before_the_next_message(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, EXIT_ON_ORDER)
    wang = _register(siyu, "Wang Fang", clock.now())
    with transaction(siyu.session_factory) as db:
        add_order(db, member_id=wang, order_id="SH001-0002", at=clock.now() + timedelta(days=1))

    _run_days(runtime, clock, 5)

    assert _messages(siyu) == []
    with transaction(siyu.session_factory) as db:
        enrollment = db.scalars(select(Enrollment)).one()
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "exit event order_paid")


def test_a_paused_journey_holds_due_steps_and_runs_them_once_resumed(
    siyu: Siyu, clock: FixedClock
) -> None:
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, GREETING_V1)
    _register(siyu, "Wang Fang", clock.now())
    _run_days(runtime, clock, 1)
    with transaction(siyu.session_factory) as db:
        journey_service.pause(db_session=db, now=clock.now(), name="greeting")

    _run_days(runtime, clock, 3)
    held = len(_messages(siyu))
    with transaction(siyu.session_factory) as db:
        journey_service.resume(db_session=db, now=clock.now(), name="greeting")
    _run_days(runtime, clock, 1)

    assert held == 0
    assert [body for _, body in _messages(siyu)] == ["v1 hello"]


WITH_GOAL = """
name: welcome-with-holdout
trigger: {type: event, event: member_registered}
goal: {event: order_paid, within: {days: 14}}
holdout_percent: 30
steps:
  - {id: welcome, type: action, action: send_message, params: {body: "Welcome"}}
"""


def test_holdout_members_get_nothing_and_only_orders_in_the_window_convert(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given 12 members register; the first six order within 14 days, two more after 20 days
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WITH_GOAL)
    start = clock.now()
    members = [_register(siyu, f"Member {i}", start) for i in range(12)]
    with transaction(siyu.session_factory) as db:
        for i, member_id in enumerate(members[:8]):
            late = i >= 6
            at = start + timedelta(days=20 if late else 5)
            add_order(db, member_id=member_id, order_id=f"SH001-{i:04d}", at=at)

    # when a month passes
    _run_days(runtime, clock, 30)

    # then holdout members got no message, and the comparison counts in-window orders only
    held_out = {
        m for m in members if in_holdout(journey="welcome-with-holdout", member_id=m, percent=30)
    }
    assert {m for m, _ in _messages(siyu)} == set(members) - held_out
    converted = set(members[:6])
    with transaction(siyu.session_factory) as db:
        result = stats.journey_stats(db_session=db, name="welcome-with-holdout")
    comparison = result.comparison
    assert comparison is not None
    assert (comparison.treatment.enrolled, comparison.holdout.enrolled) == (
        12 - len(held_out),
        len(held_out),
    )
    assert comparison.treatment.converted == len(converted - held_out)
    assert comparison.holdout.converted == len(converted & held_out)
    assert comparison.ci_low <= comparison.uplift <= comparison.ci_high


COUPON_NAME = """
name: coupon-reminder
trigger: {type: event, event: coupon_expiring}
steps:
  - {id: remind, type: action, action: send_message,
     params: {body: "{{ member.name }}, your {{ event.coupon_name }} expires soon"}}
"""


def test_a_step_failing_for_one_member_exits_her_and_the_batch_goes_on(
    siyu: Siyu, clock: FixedClock
) -> None:
    # given two reminders due in one batch, one of whose events lacks the coupon name
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, COUPON_NAME)
    with transaction(siyu.session_factory) as db:
        wang = add_member(db, name="Wang Fang", registered_at=clock.now())
        li = add_member(db, name="Li Na", registered_at=clock.now())
        add_event(db, member_id=wang, type="coupon_expiring", at=clock.now(),
                  properties={"coupon_name": "FIRST20"})  # fmt: skip
        add_event(db, member_id=li, type="coupon_expiring", at=clock.now())

    # when the worker runs
    _pass(runtime, clock.now())

    # then Wang Fang is reminded, Li Na's enrollment ends naming the template error
    assert _messages(siyu) == [(wang, "Wang Fang, your FIRST20 expires soon")]
    with transaction(siyu.session_factory) as db:
        failed = db.scalars(select(Enrollment).where(Enrollment.member_id == li)).one()
        outcomes = set(db.scalars(select(StepRun.outcome)))
    assert failed.state == "exited"
    assert failed.exit_reason is not None and "coupon_name" in failed.exit_reason
    assert len(outcomes) == 2 and "queued on sandbox" in outcomes
