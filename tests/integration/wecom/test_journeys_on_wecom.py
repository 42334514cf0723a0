"""Journeys on WeCom: an add enrolls the member; a `wecom_send` step becomes a guide task and a
staff-confirmed WeCom send, exactly once per member even when the step is retried."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.sandbox import SandboxChannel
from siyu.channels.wecom.journey_actions import WeComSend
from siyu.channels.wecom.models import WeComFollow, WeComSendRecipient, WeComSendTask
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.sends import push_queued_sends
from siyu.db import transaction
from siyu.journeys.actions import ActionContext
from siyu.journeys.models import Enrollment, StepRun
from siyu.journeys.worker import run_once
from siyu.staff.models_guides import GuideTask, GuideTaskMember
from tests.factories.journeys import apply_journey, runtime_for
from tests.integration.wecom.harness import Harness, harness, xiao_li

WECOM_WELCOME_JOURNEY = """
name: wecom-new-contact
title: New WeCom contact
trigger: {type: event, event: wecom_contact_added}
steps:
  - id: intro
    type: action
    action: wecom_send
    params:
      target: "1:1"
      title: Introduce the autumn menu
      text: 桂花乌龙上新，欢迎到店品尝
"""


async def _add(h: Harness, *, ext: str, name: str) -> int:
    fields = h.fake.simulate_add(userid="xiaoli", state=None, name=name, external_userid=ext)
    await h.fake.push(fields, http=h.siyu_http)
    await process_inbox(
        session_factory=h.siyu.session_factory,
        client=h.client,
        now=h.siyu.clock.now(),
        tz=h.siyu.settings.tz,
    )
    with h.siyu.session_factory() as session:
        member_id = session.scalar(
            sa.select(WeComFollow.member_id).where(WeComFollow.external_userid == ext)
        )
    assert member_id is not None
    return int(member_id)


def _ctx(siyu: Siyu, session: object, member_id: int, *, key: str) -> ActionContext:
    return ActionContext(
        db_session=session,  # type: ignore[arg-type]
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        journey="autumn-menu",
        version=1,
        step_id="intro",
        enrollment_id=member_id,
        member_id=member_id,
        idempotency_key=key,
        context={},
    )


PARAMS = {"target": "1:1", "title": "Introduce the autumn menu", "text": "桂花乌龙上新"}


def test_an_add_on_wecom_enrolls_the_member_and_the_step_queues_a_staff_send(
    siyu: Siyu,
) -> None:
    # given a journey triggered by wecom_contact_added, and Xiao Li at SH001
    h = harness(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp()
    xiao_li(siyu)
    runtime = runtime_for(siyu)
    apply_journey(siyu, runtime, WECOM_WELCOME_JOURNEY)

    async def scenario() -> int:
        # when Wang Fang adds Xiao Li, the worker runs, and the next WeCom pass pushes the send
        member_id = await _add(h, ext="wmWangFang", name="Wang Fang")
        run_once(runtime=runtime, channels={"sandbox": SandboxChannel()}, now=siyu.clock.now())
        await push_queued_sends(
            session_factory=siyu.session_factory, client=h.client, now=siyu.clock.now()
        )
        await h.aclose()
        return member_id

    member_id = asyncio.run(scenario())

    # then she is enrolled, the step ran once, and Xiao Li has one WeCom task to confirm
    with siyu.session_factory() as session:
        enrollment = session.scalars(sa.select(Enrollment)).one()
        assert enrollment.member_id == member_id
        outcomes = session.scalars(sa.select(StepRun.outcome)).all()
        send = session.scalars(sa.select(WeComSendTask)).one()
        members = session.scalars(sa.select(GuideTaskMember.member_id)).all()
    assert len(outcomes) == 1 and outcomes[0].endswith("(single) for xiaoli: pending")
    assert (send.status, send.userid, send.msgid is not None) == ("waiting", "xiaoli", True)
    assert members == [member_id]
    template = h.fake.msg_templates[str(send.msgid)]
    assert template["recipients"] == {"xiaoli": ["wmWangFang"]}


def test_a_retried_wecom_step_leaves_one_guide_task_with_the_member_once(siyu: Siyu) -> None:
    # given Wang Fang follows Xiao Li
    h = harness(siyu)
    xiao_li(siyu)

    async def setup() -> int:
        member_id = await _add(h, ext="wmWangFang", name="Wang Fang")
        await h.aclose()
        return member_id

    member_id = asyncio.run(setup())
    action = WeComSend()
    action.validate(PARAMS)

    # when the step runs, crashes after the action, and runs again with the same key
    for _ in range(2):
        with transaction(siyu.session_factory) as session:
            action.execute(_ctx(siyu, session, member_id, key="autumn:1:intro:1"), PARAMS)

    # then one guide task holds her once, and she is one recipient of one send
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(GuideTask)) == 1
        assert session.scalars(sa.select(GuideTaskMember.member_id)).all() == [member_id]
        recipients = session.execute(
            sa.select(WeComSendRecipient.target, WeComSendRecipient.status)
        ).all()
    assert recipients == [("wmWangFang", "pending")]


def test_members_of_one_day_share_a_send_until_it_is_created_on_wecom(siyu: Siyu) -> None:
    # given Wang Fang and Li Lei follow Xiao Li, and Zhang Min joins after the WeCom task exists
    h = harness(siyu)
    xiao_li(siyu)
    action = WeComSend()

    async def scenario() -> list[int]:
        ids = [
            await _add(h, ext="wmWangFang", name="Wang Fang"),
            await _add(h, ext="wmLiLei", name="Li Lei"),
            await _add(h, ext="wmZhangMin", name="Zhang Min"),
        ]
        for n, member_id in enumerate(ids[:2]):
            with transaction(siyu.session_factory) as session:
                action.execute(_ctx(siyu, session, member_id, key=f"k{n}"), PARAMS)
        await push_queued_sends(
            session_factory=siyu.session_factory, client=h.client, now=siyu.clock.now()
        )
        with transaction(siyu.session_factory) as session:
            action.execute(_ctx(siyu, session, ids[2], key="k2"), PARAMS)
        await h.aclose()
        return ids

    asyncio.run(scenario())

    # then the first two share send #1 (created on WeCom); the third starts follow-up #2
    with siyu.session_factory() as session:
        sends = session.execute(
            sa.select(WeComSendTask.source_key, WeComSendTask.status).order_by(WeComSendTask.id)
        ).all()
        per_task = session.execute(
            sa.select(GuideTaskMember.task_id, sa.func.count())
            .group_by(GuideTaskMember.task_id)
            .order_by(GuideTaskMember.task_id)
        ).all()
    day = siyu.clock.now().astimezone(siyu.settings.tz).date().isoformat()
    base = f"journey:autumn-menu:v1:intro:xiaoli:{day}"
    assert sends == [(base, "waiting"), (f"{base}#2", "creating")]
    assert [count for _, count in per_task] == [2, 1]


def test_a_member_who_follows_no_guide_gets_no_send(siyu: Siyu) -> None:
    xiao_li(siyu)
    with transaction(siyu.session_factory) as session:
        outcome = WeComSend().execute(_ctx(siyu, session, 424242, key="k"), PARAMS)
    assert outcome == "no send: the member is not a WeCom contact of any guide"
