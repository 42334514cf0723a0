"""Mini-program subscription messages as an automatic outbox channel named `miniprogram`.

Consent is the one-time subscription grant (一次性订阅): one accepted
wx.requestSubscribeMessage = one message. The grant is taken when the message is put in the
outbox (`enqueue_subscribe_message`, inside the caller's transaction, conditional update keyed
by the message's idempotency key), not when the dispatcher sends it: the dispatcher holds its
own transaction and a channel must not write beside it. So a message without a grant never
enters the outbox ("no subscription grant" is the caller's outcome), a replayed step finds its
own grant already taken and enqueues nothing twice, and the usual delivery policy (withdrawals
on `*`, caps, quiet hours) still applies on the way out. A message the policy then suppresses
keeps its grant consumed (decision: WeChat cannot tell us whether the user would still accept
it, and re-using a grant for another message is what the platform forbids).

Settings: SIYU_MINIPROGRAM_APPID, SIYU_MINIPROGRAM_SECRET (SIYU_MINIPROGRAM_API_BASE for the
fake); without them the channel is not built and such messages wait in the outbox.
Recipient = the member's `openid:<appid>` identity; payload = {template_id, data, page}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from siyu.channels.base import BaseChannel
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import SubscribeGrant
from siyu.channels.wecom.subscribe import MiniProgramClient
from siyu.channels.wecom.worker import run_sync
from siyu.delivery import outbox
from siyu.delivery.interface import ChannelFailure, OutboundMessage, SendResult

CHANNEL = "miniprogram"
_identities = sa.table(
    "identities",
    sa.column("member_id", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("value", sa.String),
    sa.column("released_at", sa.DateTime),
)


class MiniProgramSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_MINIPROGRAM_", extra="ignore")

    appid: str | None = None
    secret: str | None = None
    api_base: str = "https://api.weixin.qq.com"


class MiniProgramChannel(BaseChannel):
    name = CHANNEL

    def __init__(self, client_factory: Any) -> None:
        self._client_factory = client_factory  # () -> MiniProgramClient, one per send

    def send(self, message: OutboundMessage) -> SendResult:
        data: dict[str, Any] = dict(message.payload.get("data") or {})  # type: ignore[call-overload]
        payload: dict[str, Any] = {
            "touser": message.recipient,
            "template_id": message.payload.get("template_id"),
            "data": {k: {"value": v} for k, v in data.items()},
            "miniprogram_state": "formal",
            "lang": "zh_CN",
        }
        if message.payload.get("page"):
            payload["page"] = message.payload["page"]

        async def call() -> dict[str, Any]:
            client: MiniProgramClient = self._client_factory()
            try:
                return await client.send(payload)
            finally:
                await client.aclose()

        try:
            body = run_sync(call)
        except WeComError as error:
            raise ChannelFailure(str(error), permanent=error.permanent) from error
        return SendResult(provider_message_id=str(body.get("msgid", message.idempotency_key)))


def miniprogram_channels() -> dict[str, BaseChannel]:
    """{"miniprogram": channel} when the mini-program's appid and secret are configured."""
    settings = MiniProgramSettings()
    if not (settings.appid and settings.secret):
        return {}
    appid, secret, base = settings.appid, settings.secret, settings.api_base
    return {
        CHANNEL: MiniProgramChannel(
            lambda: MiniProgramClient(appid=appid, secret=secret, base_url=base)
        )
    }


def openid_of(session: Session, *, member_id: int, appid: str | None = None) -> str | None:
    """The member's openid in this mini-program (any mini-program when appid is None)."""
    kind = _identities.c.type == f"openid:{appid}" if appid else _identities.c.type.like("openid%")
    return session.scalar(
        sa.select(_identities.c.value)
        .where(_identities.c.member_id == member_id, kind, _identities.c.released_at.is_(None))
        .order_by(_identities.c.type)
        .limit(1)
    )


def reserve_grant(
    session: Session, *, openid: str, template_id: str, idempotency_key: str, now: datetime
) -> bool | None:
    """Take the oldest open grant for this key (never commits): True taken now, False already
    taken by this key earlier (a replay), None when there is no grant."""
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
        return None
    taken = session.execute(
        sa.update(SubscribeGrant)
        .where(SubscribeGrant.id == grant_id, SubscribeGrant.consumed_at.is_(None))
        .values(consumed_at=now, consumed_by=idempotency_key)
    )
    return None if taken.rowcount != 1 else True  # type: ignore[attr-defined]


def enqueue_subscribe_message(
    session: Session,
    *,
    member_id: int,
    template_id: str,
    data: dict[str, str],
    page: str | None,
    idempotency_key: str,
    now: datetime,
    source: str = "",
) -> str:
    """Reserve a grant and put the message in the outbox (never commits); a short outcome."""
    openid = openid_of(session, member_id=member_id, appid=MiniProgramSettings().appid)
    if openid is None:
        return "not sent: the member has no mini-program openid"
    reserved = reserve_grant(
        session, openid=openid, template_id=template_id, idempotency_key=idempotency_key, now=now
    )
    if reserved is None:
        return f"not sent: no subscription grant for {template_id}"
    if reserved is False:
        return "already queued"
    outbox.enqueue(
        db_session=session,
        now=now,
        idempotency_key=idempotency_key,
        channel=CHANNEL,
        member_id=member_id,
        body=" ".join(f"{k}={v}" for k, v in data.items()),
        subject=template_id,
        recipient=openid,
        payload={"template_id": template_id, "data": data, "page": page},
        source=source,
    )
    return f"queued {template_id} (grant consumed)"
