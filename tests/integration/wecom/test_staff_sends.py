"""Staff-confirmed sends: guide task + WeCom task, results tick members off, reminders, budget."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from siyu.access.scope import Viewer
from siyu.bootstrap import Siyu
from siyu.channels.wecom.inbox import WeComSettings
from siyu.channels.wecom.models import SendKind, WeComFollow, WeComSendTask
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.sends import (
    close_interrupted_pushes,
    create_staff_send,
    poll_sends,
    push_queued_sends,
)
from siyu.staff import tasks as staff_tasks
from tests.factories.brand import guide_xiao_li, store_sh001
from tests.integration.wecom.harness import Harness, harness

TEXT = {"text": {"content": "新品上市：桂花乌龙"}}


async def _wang_fang_follows_xiao_li(h: Harness) -> int:
    with h.siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        session.commit()
    fields = h.fake.simulate_add(
        userid="xiaoli", state=None, name="Wang Fang", external_userid="wmWangFang"
    )
    await h.fake.push(fields, http=h.siyu_http)
    await process_inbox(
        session_factory=h.siyu.session_factory,
        client=h.client,
        now=h.siyu.clock.now(),
        tz=h.siyu.settings.tz,
    )
    with h.siyu.session_factory() as session:
        member_id = session.scalar(sa.select(WeComFollow.member_id))
    assert member_id is not None
    return int(member_id)


def test_a_confirmed_mass_message_completes_the_guide_task(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()

    async def scenario() -> tuple[int, int, int]:
        member_id = await _wang_fang_follows_xiao_li(h)
        outcome = await create_staff_send(
            session_factory=siyu.session_factory,
            client=h.client,
            kind=SendKind.SINGLE,
            userid="xiaoli",
            source_key="journey:new-tea:step1",
            title="Send the launch",
            content=TEXT,
            now=now,
            tz=siyu.settings.tz,
            member_ids=[member_id],
        )
        before = await poll_sends(session_factory=siyu.session_factory, client=h.client, now=now)
        assert outcome.msgid is not None
        h.fake.confirm_msg_template(msgid=outcome.msgid, userid="xiaoli")
        after = await poll_sends(session_factory=siyu.session_factory, client=h.client, now=now)
        await h.aclose()
        return before.confirmed, after.recipients_sent, outcome.guide_task_id

    confirmed_before, sent, task_id = asyncio.run(scenario())

    assert (confirmed_before, sent) == (0, 1)
    with siyu.session_factory() as session:
        task = staff_tasks.get_task(session, task_id=task_id, viewer=Viewer.system())
    assert task.status == "done"
    assert [m.status for m in task.members] == ["done"]


def test_reminders_stop_at_three_per_24_hours(siyu: Siyu) -> None:
    h = harness(siyu)
    start = siyu.clock.now()

    async def scenario() -> list[int]:
        member_id = await _wang_fang_follows_xiao_li(h)
        await create_staff_send(
            session_factory=siyu.session_factory,
            client=h.client,
            kind=SendKind.SINGLE,
            userid="xiaoli",
            source_key="sop:day3",
            title="Day 3 care",
            content=TEXT,
            now=start,
            tz=siyu.settings.tz,
            member_ids=[member_id],
        )
        reminded = []
        for hours in (2, 4, 6, 8, 26):
            poll = await poll_sends(
                session_factory=siyu.session_factory,
                client=h.client,
                now=start + timedelta(hours=hours),
            )
            reminded.append(poll.reminded)
        await h.aclose()
        return reminded

    assert asyncio.run(scenario()) == [1, 1, 1, 0, 1]
    assert len(h.fake.reminders) == 4


def test_a_customer_over_our_monthly_budget_is_left_out(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()
    budget = WeComSettings(our_monthly_budget_per_customer=1)

    async def scenario() -> tuple[int, int]:
        member_id = await _wang_fang_follows_xiao_li(h)
        common = {
            "session_factory": siyu.session_factory,
            "client": h.client,
            "kind": SendKind.SINGLE,
            "userid": "xiaoli",
            "title": "Offer",
            "content": TEXT,
            "now": now,
            "tz": siyu.settings.tz,
            "member_ids": [member_id],
            "settings": budget,
        }
        first = await create_staff_send(source_key="campaign:a", **common)  # type: ignore[arg-type]
        second = await create_staff_send(source_key="campaign:b", **common)  # type: ignore[arg-type]
        await h.aclose()
        return first.included, second.limited

    assert asyncio.run(scenario()) == (1, 1)


def test_a_moment_is_tracked_until_the_guide_publishes_it(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()

    async def scenario() -> tuple[int, int]:
        await _wang_fang_follows_xiao_li(h)
        outcome = await create_staff_send(
            session_factory=siyu.session_factory,
            client=h.client,
            kind=SendKind.MOMENT,
            userid="xiaoli",
            source_key="moment:launch",
            title="Post the launch",
            content=TEXT,
            now=now,
            tz=siyu.settings.tz,
        )
        before = await poll_sends(session_factory=siyu.session_factory, client=h.client, now=now)
        moment_id = next(iter(h.fake.moments))
        h.fake.confirm_moment(moment_id=moment_id, userid="xiaoli")
        after = await poll_sends(session_factory=siyu.session_factory, client=h.client, now=now)
        await h.aclose()
        assert outcome.jobid is not None
        return before.confirmed, after.confirmed

    assert asyncio.run(scenario()) == (0, 1)


def _send_left_pushing(siyu: Siyu, *, claimed_minutes_ago: int, key: str) -> int:
    now = siyu.clock.now()
    with siyu.session_factory() as session:
        row = WeComSendTask(
            source_key=key, kind="single", userid="xiaoli", content=TEXT, created_at=now,
            status="pushing", claimed_at=now - timedelta(minutes=claimed_minutes_ago),
        )  # fmt: skip
        session.add(row)
        session.commit()
        return row.id


def test_a_push_a_stopped_worker_left_unfinished_is_closed_as_failed_after_10_minutes(
    siyu: Siyu,
) -> None:
    stale = _send_left_pushing(siyu, claimed_minutes_ago=11, key="sop:stale")
    fresh = _send_left_pushing(siyu, claimed_minutes_ago=1, key="sop:in-flight")

    closed = close_interrupted_pushes(session_factory=siyu.session_factory, now=siyu.clock.now())

    assert closed == 1
    with siyu.session_factory() as session:
        rows = {r.id: r for r in session.scalars(sa.select(WeComSendTask))}
    assert (rows[stale].status, rows[fresh].status) == ("failed", "pushing")
    assert rows[stale].error is not None and rows[stale].error.startswith("interrupted")


def test_a_send_created_directly_is_claimed_so_no_worker_pushes_it_again(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()

    async def scenario() -> int:
        member_id = await _wang_fang_follows_xiao_li(h)
        await create_staff_send(
            session_factory=siyu.session_factory, client=h.client, kind=SendKind.SINGLE,
            userid="xiaoli", source_key="journey:new-tea:step1", title="Send the launch",
            content=TEXT, now=now, tz=siyu.settings.tz, member_ids=[member_id],
        )  # fmt: skip
        pushed = await push_queued_sends(
            session_factory=siyu.session_factory, client=h.client, now=now
        )
        await h.aclose()
        return pushed

    assert asyncio.run(scenario()) == 0
    assert h.fake.calls["externalcontact/add_msg_template"] == 1
