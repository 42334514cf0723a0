"""Mini-program subscription messages through the outbox: a grant recorded over the API allows
exactly one message; without a grant nothing is queued; the channel sends subscribe/send."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.channels import build_channels
from siyu.channels.base import ChannelSettings
from siyu.channels.wecom.journey_actions import MiniProgramNotify
from siyu.channels.wecom.subscribe import MiniProgramClient
from siyu.channels.wecom.subscribe_channel import MiniProgramChannel
from siyu.db import transaction
from siyu.delivery.dispatcher import dispatch_due
from siyu.delivery.models import OutboxMessage
from siyu.journeys.actions import ActionContext
from tests.factories.brand import wang_fang

OPENID = "oWangFangDemoTea"
PARAMS = {
    "template_id": "coupon-expiry",
    "data": {"thing1": "满50减10", "name2": "{{ member.name }}"},
    "page": "pages/coupons",
}


def _wang_fang_with_openid(siyu: Siyu) -> int:
    with siyu.session_factory() as session:
        persona = wang_fang(session)
        session.execute(
            sa.text(
                "INSERT INTO identities (type, value, member_id, first_seen_at, polluted) "
                "VALUES ('openid:wxDemoTea', :v, :m, :t, false)"
            ),
            {"v": OPENID, "m": persona.member_id, "t": siyu.clock.now()},
        )
        session.commit()
    return persona.member_id


def _notify(siyu: Siyu, member_id: int, *, key: str) -> str:
    action = MiniProgramNotify()
    action.validate(PARAMS)
    with transaction(siyu.session_factory) as session:
        ctx = ActionContext(
            db_session=session,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
            journey="coupon-expiry",
            version=1,
            step_id="notify",
            enrollment_id=1,
            member_id=member_id,
            idempotency_key=key,
            context={},
        )
        return action.execute(ctx, PARAMS)


def _grant(siyu: Siyu) -> dict[str, object]:
    with TestClient(create_app(siyu)) as client:
        response = client.post(
            "/api/wecom/subscribe/grants",
            json={"openid": OPENID, "template_id": "coupon-expiry"},
        )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_one_grant_allows_one_message_even_when_the_step_is_retried(siyu: Siyu) -> None:
    # given Wang Fang accepted the coupon-expiry subscription once in the mini-program
    member_id = _wang_fang_with_openid(siyu)
    assert _grant(siyu)["available"] == 1

    # when the journey step runs, is retried, and a second coupon expires later
    first = _notify(siyu, member_id, key="coupon-expiry:1:notify:1")
    retry = _notify(siyu, member_id, key="coupon-expiry:1:notify:1")
    second = _notify(siyu, member_id, key="coupon-expiry:1:notify:2")

    # then exactly one message is queued, and the second has no grant left
    assert first == "queued coupon-expiry (grant consumed)"
    assert retry == "already queued"
    assert second == "not sent: no subscription grant for coupon-expiry"
    with siyu.session_factory() as session:
        queued = session.execute(sa.select(OutboxMessage.channel, OutboxMessage.recipient)).all()
    assert queued == [("miniprogram", OPENID)]


def test_the_outbox_delivers_it_through_subscribe_send(siyu: Siyu) -> None:
    member_id = _wang_fang_with_openid(siyu)
    _grant(siyu)
    _notify(siyu, member_id, key="coupon-expiry:1:notify:1")
    calls: list[dict[str, object]] = []

    def wechat(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/token":
            return httpx.Response(200, json={"access_token": "MP", "expires_in": 7200})
        calls.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "msgid": 7001})

    channel = MiniProgramChannel(
        lambda: MiniProgramClient(
            appid="wxDemoTea",
            secret="s",
            http=httpx.AsyncClient(transport=httpx.MockTransport(wechat), base_url="https://mp"),
        )
    )

    report = dispatch_due(
        session_factory=siyu.session_factory,
        channels={"miniprogram": channel},
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
    )

    assert report.counts.get("sent") == 1
    assert calls == [
        {
            "touser": OPENID,
            "template_id": "coupon-expiry",
            "data": {"thing1": {"value": "满50减10"}, "name2": {"value": "Wang Fang"}},
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "page": "pages/coupons",
        }
    ]


def test_the_channel_is_built_only_with_an_appid_and_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SIYU_MINIPROGRAM_APPID", raising=False)
    assert "miniprogram" not in build_channels(ChannelSettings(), utc_now=lambda: None)  # type: ignore[arg-type,return-value]
    monkeypatch.setenv("SIYU_MINIPROGRAM_APPID", "wxDemoTea")
    monkeypatch.setenv("SIYU_MINIPROGRAM_SECRET", "secret")
    assert "miniprogram" in build_channels(ChannelSettings(), utc_now=lambda: None)  # type: ignore[arg-type,return-value]
