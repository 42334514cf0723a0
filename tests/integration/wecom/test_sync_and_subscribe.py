"""Full sync of customers, groups and corp tags on the fake; one-time subscription consent."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom.fake_server import FakeCustomer
from siyu.channels.wecom.models import WeComFollow, WeComGroupMember
from siyu.channels.wecom.subscribe import (
    MiniProgramClient,
    NoConsent,
    record_grant,
    send_subscribe_message,
)
from siyu.channels.wecom.sync import sync_corp_tags, sync_customers, sync_groups
from siyu.tags.models import Tag, TagGroup
from tests.integration.wecom.harness import harness


def test_full_sync_pages_through_customers_groups_and_tags(siyu: Siyu) -> None:
    h = harness(siyu)
    now = siyu.clock.now()
    for n in range(5):  # more than one page of the fake (2 per page)
        ext = f"wm{n}"
        h.fake.customers[ext] = FakeCustomer(
            ext,
            f"Customer {n}",
            f"union{n}",
            {
                "xiaoli": {
                    "userid": "xiaoli",
                    "remark": "",
                    "createtime": 1781748000,
                    "tags": [],
                    "state": "",
                }
            },
        )
    h.fake.groups["wrChat1"] = {
        "chat_id": "wrChat1",
        "name": "Demo Tea SH001",
        "owner": "xiaoli",
        "create_time": 1781748000,
        "member_list": [
            {"userid": "wm0", "type": 2, "join_time": 1781748000},
            {"userid": "xiaoli", "type": 1, "join_time": 1781748000},
        ],
    }
    h.fake.tag_groups.append(
        {"group_id": "etgA", "group_name": "偏好", "tag": [{"id": "etA1", "name": "乌龙"}]}
    )
    with siyu.session_factory() as session:
        group = TagGroup(name="等级", exclusive=True, created_at=now)
        session.add(group)
        session.flush()
        session.add(Tag(group_id=group.id, name="金卡", created_at=now))
        session.commit()

    async def scenario() -> tuple[int, int, int, int]:
        customers = await sync_customers(
            session_factory=siyu.session_factory, client=h.client, now=now, tz=siyu.settings.tz
        )
        again = await sync_customers(
            session_factory=siyu.session_factory, client=h.client, now=now, tz=siyu.settings.tz
        )
        groups = await sync_groups(
            session_factory=siyu.session_factory, client=h.client, now=now, tz=siyu.settings.tz
        )
        tags = await sync_corp_tags(session_factory=siyu.session_factory, client=h.client, now=now)
        await h.aclose()
        return customers.follows_changed, again.follows_changed, groups.groups, tags.tags_pushed

    assert asyncio.run(scenario()) == (5, 0, 1, 1)
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComFollow)) == 5
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComGroupMember)) == 2
        mirrored = session.execute(sa.select(Tag.name, Tag.wecom_tag_id).order_by(Tag.name)).all()
    assert [name for name, _ in mirrored] == ["乌龙", "金卡"]
    assert all(wecom_id for _, wecom_id in mirrored)
    assert [g["group_name"] for g in h.fake.tag_groups] == ["偏好", "等级"]


def test_a_subscription_grant_allows_exactly_one_send(siyu: Siyu) -> None:
    sent: list[dict[str, object]] = []

    def wechat(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/token":
            return httpx.Response(200, json={"access_token": "MP", "expires_in": 7200})
        sent.append({"path": request.url.path, "body": request.content.decode()})
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

    client = MiniProgramClient(
        appid="wxDemoTea",
        secret="s",
        http=httpx.AsyncClient(transport=httpx.MockTransport(wechat), base_url="https://mp.test"),
    )
    now = siyu.clock.now()
    record_grant(
        session_factory=siyu.session_factory,
        openid="oWangFang",
        template_id="coupon-expiry",
        now=now,
    )
    common = {
        "session_factory": siyu.session_factory,
        "client": client,
        "openid": "oWangFang",
        "template_id": "coupon-expiry",
        "data": {"thing1": "满50减10", "time2": "2026-06-30"},
        "page": "pages/coupons",
        "now": now,
    }

    first = asyncio.run(send_subscribe_message(idempotency_key="coupon:42:expiry", **common))  # type: ignore[arg-type]
    replay = asyncio.run(send_subscribe_message(idempotency_key="coupon:42:expiry", **common))  # type: ignore[arg-type]
    with pytest.raises(NoConsent):
        asyncio.run(send_subscribe_message(idempotency_key="coupon:43:expiry", **common))  # type: ignore[arg-type]

    assert (first, replay) == (True, False)
    assert len(sent) == 1
    assert sent[0]["path"] == "/cgi-bin/message/subscribe/send"
