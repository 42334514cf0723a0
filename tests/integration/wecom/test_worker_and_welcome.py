"""The WeCom worker hook, the 20 s welcome deadline and change_external_tag callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom import processing
from siyu.channels.wecom.models import WeComCorpTag, WeComFollow, WeComInbox, WeComWelcome
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.sync import sync_corp_tags
from siyu.channels.wecom.worker import run_wecom_pass
from siyu.journeys.worker import WORKER_HOOKS
from siyu.tags.models import Tag
from tests.integration.wecom.harness import Harness, greeting_code, harness, xiao_li


def test_the_worker_runs_the_wecom_pass_as_a_hook() -> None:
    assert "siyu.channels.wecom.worker:run_wecom_pass" in WORKER_HOOKS


def test_without_a_corp_secret_the_hook_still_processes_the_inbox(
    siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Wang Fang's add callback is in the inbox and siyu has no WeCom secret
    monkeypatch.delenv("SIYU_WECOM_SECRET", raising=False)
    monkeypatch.delenv("SIYU_WECOM_CORP_ID", raising=False)
    h = harness(siyu)
    xiao_li(siyu)

    async def push() -> None:
        fields = h.fake.simulate_add(
            userid="xiaoli", state=None, name="Wang Fang", external_userid="wmWangFang"
        )
        await h.fake.push(fields, http=h.siyu_http)
        await h.aclose()

    asyncio.run(push())

    # when the worker's hook runs
    done = run_wecom_pass(session_factory=siyu.session_factory, now=siyu.clock.now())

    # then the callback became a follow relation and nothing failed
    assert done == 1
    with siyu.session_factory() as session:
        assert session.scalars(sa.select(WeComInbox.status)).all() == ["done"]
        follow = session.scalars(sa.select(WeComFollow)).one()
    assert (follow.userid, follow.external_userid) == ("xiaoli", "wmWangFang")


def test_a_welcome_more_than_20_s_after_the_add_is_not_sent_but_recorded_late(
    siyu: Siyu,
) -> None:
    # given Wang Fang scanned Xiao Li's code 30 s before the worker sees the callback
    h = harness(siyu)
    xiao_li(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp() - 30

    async def scenario() -> int:
        await greeting_code(h)
        await h.fake.push(
            h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name="Wang Fang"),
            http=h.siyu_http,
        )
        result = await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        await h.aclose()
        return result.welcomes_late

    # when the worker processes it
    late = asyncio.run(scenario())

    # then WeCom was not asked and the decision is recorded
    assert late == 1
    assert h.fake.welcomes_sent == []
    with siyu.session_factory() as session:
        welcome = session.scalars(sa.select(WeComWelcome)).one()
    assert welcome.status == "late"
    assert welcome.error == "welcome_late: 30 s after the add (limit 20 s)"


def test_a_welcome_within_20_s_is_sent(siyu: Siyu) -> None:
    h = harness(siyu)
    xiao_li(siyu)
    h.fake.now = lambda: siyu.clock.now().timestamp() - 19

    async def scenario() -> int:
        await greeting_code(h)
        await h.fake.push(
            h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name="Wang Fang"),
            http=h.siyu_http,
        )
        h.fake.now = lambda: siyu.clock.now().timestamp()
        result = await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        await h.aclose()
        return result.welcomes_sent

    assert asyncio.run(scenario()) == 1
    assert h.fake.welcomes_sent[0]["text"] == {"content": "Hi Wang Fang"}


def test_a_batch_of_adds_is_welcomed_once_each_even_when_an_add_cannot_be_ingested(
    siyu: Siyu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given three customers scanned Xiao Li's card; ingesting the second one fails
    h = harness(siyu)
    xiao_li(siyu)
    real_handle = processing._handle

    def failing_for_li_na(session: Any, fields: dict[str, str], remote: Any, *rest: Any) -> Any:
        if remote.get("name") == "Li Na":
            raise ValueError("ingest refused")
        return real_handle(session, fields, remote, *rest)

    monkeypatch.setattr(processing, "_handle", failing_for_li_na)

    async def scenario() -> tuple[int, int]:
        await greeting_code(h)
        for name in ("Wang Fang", "Li Na", "Zhou Min"):
            await h.fake.push(
                h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name=name),
                http=h.siyu_http,
            )
        first = await process_inbox(
            session_factory=siyu.session_factory, client=h.client, now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )  # fmt: skip
        again = await process_inbox(
            session_factory=siyu.session_factory, client=h.client, now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )  # fmt: skip
        await h.aclose()
        return first.welcomes_sent, again.welcomes_sent

    # when the worker passes twice, then each customer was welcomed exactly once
    assert asyncio.run(scenario()) == (3, 0)
    assert sorted(w["text"]["content"] for w in h.fake.welcomes_sent) == [
        "Hi Li Na", "Hi Wang Fang", "Hi Zhou Min",
    ]  # fmt: skip


def _tag_callback(h: Harness, *, change: str, tag_id: str) -> dict[str, str]:
    return {
        "Event": "change_external_tag",
        "ChangeType": change,
        "TagType": "tag",
        "Id": tag_id,
        "CreateTime": str(int(h.siyu.clock.now().timestamp())),
    }


def test_a_tag_renamed_on_wecom_is_renamed_in_siyu(siyu: Siyu) -> None:
    # given the corp tag 乌龙 is mirrored into siyu
    h = harness(siyu)
    now = siyu.clock.now()

    async def scenario() -> str:
        group = await h.client.add_corp_tag({"group_name": "偏好", "tag": [{"name": "乌龙"}]})
        tag_id = str(group["tag_group"]["tag"][0]["id"])
        await sync_corp_tags(session_factory=siyu.session_factory, client=h.client, now=now)
        # when an admin renames it in WeCom and WeCom calls back
        h.fake.tag_groups[0]["tag"][0]["name"] = "桂花乌龙"
        await h.fake.push(_tag_callback(h, change="update", tag_id=tag_id), http=h.siyu_http)
        await process_inbox(
            session_factory=siyu.session_factory, client=h.client, now=now, tz=siyu.settings.tz
        )
        await h.aclose()
        return tag_id

    tag_id = asyncio.run(scenario())

    # then both sides of the mapping carry the new name
    with siyu.session_factory() as session:
        mirror = session.scalars(sa.select(WeComCorpTag).where(WeComCorpTag.tag_id == tag_id)).one()
        siyu_name = session.scalar(sa.select(Tag.name).where(Tag.wecom_tag_id == tag_id))
    assert (mirror.name, mirror.deleted, siyu_name) == ("桂花乌龙", False, "桂花乌龙")


def test_a_tag_deleted_on_wecom_stops_mirroring_without_a_client(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()

    async def scenario() -> str:
        group = await h.client.add_corp_tag({"group_name": "偏好", "tag": [{"name": "乌龙"}]})
        tag_id = str(group["tag_group"]["tag"][0]["id"])
        await sync_corp_tags(session_factory=siyu.session_factory, client=h.client, now=now)
        await h.fake.push(_tag_callback(h, change="delete", tag_id=tag_id), http=h.siyu_http)
        await process_inbox(
            session_factory=siyu.session_factory, client=None, now=now, tz=siyu.settings.tz
        )
        await h.aclose()
        return tag_id

    tag_id = asyncio.run(scenario())

    with siyu.session_factory() as session:
        deleted = session.scalar(
            sa.select(WeComCorpTag.deleted).where(WeComCorpTag.tag_id == tag_id)
        )
        kept = session.scalar(sa.select(Tag.name).where(Tag.wecom_tag_id == tag_id))
    assert (deleted, kept) == (True, "乌龙")
