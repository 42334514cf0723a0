"""The welcome lane: adds greeted ahead of their ingest, once, whoever gets there first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom.models import WeComFollow, WeComInbox, WeComWelcome
from siyu.channels.wecom.processing import ProcessResult, process_inbox
from siyu.channels.wecom.welcome import close_interrupted_welcomes
from siyu.channels.wecom.welcome_lane import LanePass, WelcomeLane, greet_new_adds
from siyu.channels.wecom.worker import run_inbox_lanes
from tests.integration.wecom.harness import Harness, greeting_code, harness, xiao_li


async def _xiao_li_with_greeting_code(h: Harness) -> None:
    xiao_li(h.siyu)
    await greeting_code(h)


async def _scan(h: Harness, *names: str) -> None:
    for name in names:
        fields = h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name=name)
        await h.fake.push(fields, http=h.siyu_http)


async def _greet(h: Harness, lane: WelcomeLane | None = None) -> LanePass:
    """One lane pass at the clock's now (a fresh lane unless one is given)."""
    return await greet_new_adds(
        session_factory=h.siyu.session_factory,
        client=h.client,
        lane=lane if lane is not None else WelcomeLane(),
        now=h.siyu.clock.now(),
    )


async def _ingest(h: Harness, lane: WelcomeLane) -> ProcessResult:
    return await process_inbox(
        session_factory=h.siyu.session_factory,
        client=h.client,
        now=h.siyu.clock.now(),
        tz=h.siyu.settings.tz,
        lane=lane,
    )


def _inbox_statuses(siyu: Siyu) -> list[str]:
    with siyu.session_factory() as session:
        return list(session.scalars(sa.select(WeComInbox.status).order_by(WeComInbox.id)))


def test_the_lane_greets_an_add_before_it_is_ingested(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> int:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang")
        done = await _greet(h)
        await h.aclose()
        return done.welcomes.sent

    assert asyncio.run(scenario()) == 1
    assert [w["text"]["content"] for w in h.fake.welcomes_sent] == ["Hi Wang Fang"]
    assert _inbox_statuses(siyu) == ["pending"]  # the ingest has not run yet


def test_the_ingest_after_the_lane_does_not_greet_again_and_reuses_the_fetched_customer(
    siyu: Siyu,
) -> None:
    h = harness(siyu)
    lane = WelcomeLane()

    async def scenario() -> tuple[int, int]:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang", "Li Na")
        await _greet(h, lane)
        ingest = await _ingest(h, lane)
        await h.aclose()
        return ingest.processed, ingest.welcomes_sent

    assert asyncio.run(scenario()) == (2, 0)
    assert len(h.fake.welcomes_sent) == 2
    assert h.fake.calls["externalcontact/get"] == 2  # once per add, by the lane
    assert lane.contacts == {}
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComFollow)) == 2
        statuses = session.scalars(sa.select(WeComWelcome.status)).all()
    assert statuses == ["sent", "sent"]


def test_an_add_the_lane_did_not_see_is_welcomed_by_the_ingest(siyu: Siyu) -> None:
    h = harness(siyu)
    lane = WelcomeLane(watermark=10**9)  # e.g. an inbox id that became visible late

    async def scenario() -> int:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Zhou Min")
        ingest = await _ingest(h, lane)
        await h.aclose()
        return ingest.welcomes_sent

    assert asyncio.run(scenario()) == 1
    assert [w["text"]["content"] for w in h.fake.welcomes_sent] == ["Hi Zhou Min"]


def test_two_lanes_racing_for_the_same_adds_greet_each_customer_once(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> tuple[int, int]:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang", "Li Na", "Zhou Min")
        first, second = await asyncio.gather(*(_greet(h) for _ in range(2)))
        await h.aclose()
        return first.welcomes.sent, second.welcomes.sent

    assert sum(asyncio.run(scenario())) == 3
    assert sorted(w["text"]["content"] for w in h.fake.welcomes_sent) == [
        "Hi Li Na", "Hi Wang Fang", "Hi Zhou Min",
    ]  # fmt: skip


def test_the_lane_closes_an_add_seen_after_20_s_as_late_without_calling_wecom(
    siyu: Siyu,
) -> None:
    h = harness(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp() - 25

    async def scenario() -> int:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang")
        done = await _greet(h)
        await h.aclose()
        return done.welcomes.late

    assert asyncio.run(scenario()) == 1
    assert h.fake.welcomes_sent == []
    with siyu.session_factory() as session:
        welcome = session.scalars(sa.select(WeComWelcome)).one()
    assert (welcome.status, welcome.error) == (
        "late",
        "welcome_late: 25 s after the add (limit 20 s)",
    )


def test_a_welcome_a_stopped_worker_left_claimed_is_closed_as_failed_not_sent_again(
    siyu: Siyu,
) -> None:
    now = siyu.clock.now()
    with siyu.session_factory() as session:
        for code, minutes_ago in (("wc-old", 10), ("wc-in-flight", 0)):
            session.add(
                WeComWelcome(
                    welcome_code=code,
                    userid="xiaoli",
                    external_userid=f"wm-{code}",
                    status="sending",
                    added_at=now - timedelta(minutes=minutes_ago),
                )
            )
        session.commit()

    assert close_interrupted_welcomes(siyu.session_factory, now=now) == 1

    with siyu.session_factory() as session:
        rows = dict(
            session.execute(sa.select(WeComWelcome.welcome_code, WeComWelcome.status)).all()
        )
        old = session.scalars(
            sa.select(WeComWelcome).where(WeComWelcome.welcome_code == "wc-old")
        ).one()
    assert rows == {"wc-old": "failed", "wc-in-flight": "sending"}
    assert old.error is not None and old.error.startswith("interrupted")


def test_the_inbox_lanes_greet_and_ingest_every_add_until_stopped(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> None:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang", "Li Na", "Zhou Min")
        stop = asyncio.Event()

        async def stop_when_drained() -> None:
            while "pending" in _inbox_statuses(siyu) or len(h.fake.welcomes_sent) < 3:
                await asyncio.sleep(0.01)
            stop.set()

        await asyncio.wait_for(
            asyncio.gather(
                run_inbox_lanes(
                    session_factory=siyu.session_factory,
                    client=h.client,
                    clock=siyu.clock,
                    tz=siyu.settings.tz,
                    stop=stop,
                    idle=0.01,
                ),
                stop_when_drained(),
            ),
            timeout=60,
        )
        await h.aclose()

    asyncio.run(scenario())
    assert len(h.fake.welcomes_sent) == 3
    assert _inbox_statuses(siyu) == ["done", "done", "done"]


def test_a_lane_that_reaches_adds_older_than_2_s_is_behind_until_it_finds_nothing_new(
    siyu: Siyu,
) -> None:
    h = harness(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp() - 3
    lane = WelcomeLane()

    async def scenario() -> tuple[bool, bool]:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang")
        await _greet(h, lane)
        behind = lane.behind
        await _greet(h, lane)
        await h.aclose()
        return behind, lane.behind

    assert asyncio.run(scenario()) == (True, False)


def test_the_ingest_waits_while_the_lane_is_behind(siyu: Siyu) -> None:
    h = harness(siyu)
    lane = WelcomeLane()

    async def scenario() -> tuple[list[str], int]:
        await _xiao_li_with_greeting_code(h)
        await _scan(h, "Wang Fang")
        await _greet(h, lane)
        lane.behind = True  # as if a burst of older adds were still being greeted
        ingest = asyncio.create_task(_ingest(h, lane))
        await asyncio.sleep(0.3)
        while_behind = _inbox_statuses(siyu)
        lane.behind = False
        processed = (await ingest).processed
        await h.aclose()
        return while_behind, processed

    assert asyncio.run(scenario()) == (["pending"], 1)
