"""End to end on the fake WeCom: a customer scans Xiao Li's code at SH001 → callback stored once →
welcome sent → tags applied on WeCom and in siyu → member (OneID by unionid) attributed."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from siyu.bootstrap import Siyu
from siyu.channels.wecom.models import WeComFollow, WeComInbox, WeComWelcome
from siyu.channels.wecom.processing import process_inbox
from siyu.growth import service as growth
from siyu.growth.models import CodeScope
from siyu.identity.service import find_member_by_identity
from siyu.tags.models import Tag, TagGroup
from siyu.tags.service import member_tags
from tests.factories.brand import guide_xiao_li, store_sh001
from tests.integration.wecom.harness import greeting_code, harness

WANG_FANG_UNIONID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


def _demo_tea(siyu: Siyu, *, wecom_tag_id: str) -> None:
    with siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        group = TagGroup(name="来源", exclusive=False, created_at=siyu.clock.now())
        session.add(group)
        session.flush()
        session.add(
            Tag(
                group_id=group.id,
                name="门店活码",
                wecom_tag_id=wecom_tag_id,
                created_at=siyu.clock.now(),
            )
        )
        session.commit()


def test_a_scan_of_a_store_code_greets_tags_and_attributes_the_customer(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> tuple[int, int]:
        tag_group = await h.client.add_corp_tag(
            {"group_name": "来源", "tag": [{"name": "门店活码"}]}
        )
        tag_id = tag_group["tag_group"]["tag"][0]["id"]
        _demo_tea(siyu, wecom_tag_id=tag_id)
        code = await growth.create_channel_code(
            session_factory=siyu.session_factory,
            gateway=h.client.add_contact_way,
            name="SH001 counter",
            scope=CodeScope.STORE,
            userids=["xiaoli"],
            store_code="SH001",
            state="sh001-counter",
            welcome={
                "text": "欢迎 {name}，我是小李",
                "miniprogram": {"title": "新人礼", "appid": "wxDemo", "page": "pages/gift"},
            },
            auto_tags=[tag_id],
            now=siyu.clock.now(),
        )
        assert code.config_id == "cfg3"  # etg1, et2 went to the tag group and tag
        # when Wang Fang scans it and WeCom calls back (twice: a retry)
        fields = h.fake.simulate_add(
            userid="xiaoli", state="sh001-counter", name="Wang Fang", unionid=WANG_FANG_UNIONID
        )
        first = await h.fake.push(fields, http=h.siyu_http)
        again = await h.fake.push(fields, http=h.siyu_http)
        assert (first.status_code, first.text, again.status_code) == (200, "success", 200)
        result = await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        await h.aclose()
        return result.welcomes_sent, code.id

    welcomes_sent, code_id = asyncio.run(scenario())

    # then exactly one welcome went out, with the text and the mini-program card
    assert welcomes_sent == 1
    assert len(h.fake.welcomes_sent) == 1
    sent = h.fake.welcomes_sent[0]
    assert sent["text"] == {"content": "欢迎 Wang Fang，我是小李"}
    assert sent["attachments"][0]["miniprogram"]["page"] == "pages/gift"
    # and the member exists once, found by unionid, attributed to Xiao Li at SH001 through the code
    member_id = find_member_by_identity(
        session_factory=siyu.session_factory, identity=WANG_FANG_UNIONID
    )
    attribution = growth.attribution_of(session_factory=siyu.session_factory, member_id=member_id)
    assert attribution is not None
    assert (attribution.userid, attribution.store_code, attribution.code_id) == (
        "xiaoli",
        "SH001",
        code_id,
    )
    # and tagged in siyu and on WeCom
    tags = member_tags(session_factory=siyu.session_factory, member_id=member_id)
    assert [(t.tag, t.source) for t in tags] == [("来源:门店活码", "wecom")]
    follow_tags = next(iter(h.fake.customers.values())).follow["xiaoli"]["tags"]
    assert len(follow_tags) == 1
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComInbox)) == 1
        follow = session.scalars(sa.select(WeComFollow)).one()
        assert (follow.userid, follow.state, follow.member_id, follow.deleted_at) == (
            "xiaoli",
            "sh001-counter",
            member_id,
            None,
        )
        assert session.scalars(sa.select(WeComWelcome.status)).all() == ["sent"]


def test_processing_the_inbox_twice_greets_once(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> tuple[int, int]:
        _demo_tea(siyu, wecom_tag_id="et-none")
        await greeting_code(h)
        await h.fake.push(
            h.fake.simulate_add(userid="xiaoli", state="g-xiaoli", name="Wang Fang"),
            http=h.siyu_http,
        )
        first = await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        second = await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        await h.aclose()
        return first.welcomes_sent, second.processed

    assert asyncio.run(scenario()) == (1, 0)
    assert len(h.fake.welcomes_sent) == 1


def test_the_customer_deleting_the_guide_is_recorded_as_a_churn_signal(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> None:
        h.fake.now = lambda: 1_781_748_000.0
        fields = h.fake.simulate_add(
            userid="xiaoli", state=None, name="Wang Fang", external_userid="wmWangFang"
        )
        await h.fake.push(fields, http=h.siyu_http)
        h.fake.now = lambda: 1_781_748_600.0  # ten minutes later
        await h.fake.push(
            h.fake.simulate_delete_by_customer(userid="xiaoli", external_userid="wmWangFang"),
            http=h.siyu_http,
        )
        await process_inbox(
            session_factory=siyu.session_factory,
            client=h.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
        await h.aclose()

    asyncio.run(scenario())

    with siyu.session_factory() as session:
        follow = session.scalars(sa.select(WeComFollow)).one()
        assert follow.deleted_by == "customer"
        assert follow.deleted_at is not None
        types = session.scalars(sa.text("SELECT type FROM events ORDER BY occurred_at")).all()
    assert types == ["wecom_contact_added", "wecom_customer_left"]


def test_a_callback_with_a_bad_signature_is_refused_and_not_stored(siyu: Siyu) -> None:
    h = harness(siyu)

    async def scenario() -> int:
        params, body = h.fake.envelope(
            {"Event": "change_external_contact", "ChangeType": "add_external_contact"}
        )
        response = await h.siyu_http.post(
            "/wecom/callback", params={**params, "msg_signature": "0" * 40}, content=body
        )
        await h.aclose()
        return response.status_code

    assert asyncio.run(scenario()) == 403
    with siyu.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WeComInbox)) == 0


def test_url_verification_answers_the_decrypted_echostr(siyu: Siyu) -> None:
    h = harness(siyu)
    sealed = h.fake.crypto.encrypt(
        message="1616140317555161061", timestamp="1409659589", nonce="263014780"
    )

    async def scenario() -> httpx.Response:
        response = await h.siyu_http.get(
            "/wecom/callback",
            params={
                "msg_signature": sealed.msg_signature,
                "timestamp": "1409659589",
                "nonce": "263014780",
                "echostr": sealed.encrypt,
            },
        )
        await h.aclose()
        return response

    response = asyncio.run(scenario())

    assert (response.status_code, response.text) == (200, "1616140317555161061")
    assert response.headers["content-type"].startswith("text/plain")
