"""WeChat mini-program subscription messages (`subscribeMessage.send`) as an automatic channel.

One-time subscriptions (一次性订阅): each time a user accepts a template in the mini-program
(wx.requestSubscribeMessage) the mini-program backend records a grant; each grant allows
exactly one send. `send_subscribe_message` consumes the oldest unconsumed grant for
(openid, template) with a conditional update keyed by the message's idempotency key, then calls
POST https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=…
{touser, template_id, page, data: {key: {value}}, miniprogram_state, lang}. Without a grant
nothing is sent (`NoConsent`); errcode 43101 (user refused) consumes nothing further.
Used for coupon expiry and order status notices.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import TokenCache
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import SubscribeGrant


class NoConsent(Exception):
    """The member has no unused subscription for this template."""


def record_grant(
    *,
    session_factory: sessionmaker[Session],
    openid: str,
    template_id: str,
    now: datetime,
    member_id: int | None = None,
) -> int:
    with session_factory() as session:
        grant = SubscribeGrant(
            openid=openid, template_id=template_id, member_id=member_id, granted_at=now
        )
        session.add(grant)
        session.commit()
        return grant.id


def available_grants(
    *, session_factory: sessionmaker[Session], openid: str, template_id: str
) -> int:
    with session_factory() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(SubscribeGrant)
                .where(
                    SubscribeGrant.openid == openid,
                    SubscribeGrant.template_id == template_id,
                    SubscribeGrant.consumed_at.is_(None),
                )
            )
            or 0
        )


class MiniProgramClient:
    """appid + secret → cached access_token (cgi-bin/token), then subscribe/send."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        http: httpx.AsyncClient | None = None,
        base_url: str = "https://api.weixin.qq.com",
        tokens: TokenCache | None = None,
    ) -> None:
        self.appid, self._secret = appid, secret
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self.tokens = tokens or TokenCache()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _fetch(self) -> tuple[str, int]:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self._secret}
        body = (await self._http.get("/cgi-bin/token", params=params)).json()
        if "access_token" not in body:
            raise WeComError(
                api="token",
                errcode=int(body.get("errcode", -2)),
                errmsg=str(body.get("errmsg")),
                permanent=True,
            )
        return str(body["access_token"]), int(body.get("expires_in", 7200))

    async def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self.tokens.get(("wechat", self.appid), self._fetch)
        response = await self._http.post(
            "/cgi-bin/message/subscribe/send", params={"access_token": token}, json=payload
        )
        body: dict[str, Any] = response.json()
        errcode = int(body.get("errcode", 0))
        if errcode:
            raise WeComError(
                api="subscribeMessage.send",
                errcode=errcode,
                errmsg=str(body.get("errmsg")),
                permanent=errcode not in (-1, 45009),
            )
        return body


async def send_subscribe_message(
    *,
    session_factory: sessionmaker[Session],
    client: MiniProgramClient,
    openid: str,
    template_id: str,
    data: dict[str, str],
    page: str | None,
    idempotency_key: str,
    now: datetime,
) -> bool:
    """Consume one grant and send; False when this key was already sent. Raises NoConsent."""
    with session_factory() as session:
        if session.scalar(
            sa.select(SubscribeGrant.id).where(SubscribeGrant.consumed_by == idempotency_key)
        ):
            return False
        grant_id = session.scalar(
            sa.select(SubscribeGrant.id)
            .where(
                SubscribeGrant.openid == openid,
                SubscribeGrant.template_id == template_id,
                SubscribeGrant.consumed_at.is_(None),
            )
            .order_by(SubscribeGrant.id)
            .limit(1)
        )
        if grant_id is None:
            raise NoConsent(f"{openid} has no unused subscription to {template_id}")
        taken = session.execute(
            sa.update(SubscribeGrant)
            .where(SubscribeGrant.id == grant_id, SubscribeGrant.consumed_at.is_(None))
            .values(consumed_at=now, consumed_by=idempotency_key)
        )
        session.commit()
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
    payload: dict[str, Any] = {
        "touser": openid,
        "template_id": template_id,
        "data": {k: {"value": v} for k, v in data.items()},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    if page:
        payload["page"] = page
    await client.send(payload)
    return True
