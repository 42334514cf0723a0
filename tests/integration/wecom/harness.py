"""A siyu app and a fake WeCom wired together in-process (ASGI transports, no sockets)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from siyu.api.app import create_app
from siyu.bootstrap import Siyu
from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.fake_server import FakeWeCom, build_app
from siyu.growth import service as growth
from siyu.growth.models import CodeScope
from tests.factories.brand import guide_xiao_li, store_sh001

CORP_ID = "wwDemoTea"
SECRET = "demo-tea-contact-secret"
TOKEN = "DemoTeaToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@dataclass
class Harness:
    siyu: Siyu
    fake: FakeWeCom
    siyu_http: httpx.AsyncClient
    client: WeComClient

    async def aclose(self) -> None:
        await self.siyu_http.aclose()
        await self.client.aclose()


def configure(siyu: Siyu) -> None:
    siyu.settings.wecom_corp_id = CORP_ID
    siyu.settings.wecom_token = TOKEN
    siyu.settings.wecom_aes_key = AES_KEY


def harness(siyu: Siyu) -> Harness:
    configure(siyu)
    fake = FakeWeCom(
        corp_id=CORP_ID,
        secret=SECRET,
        token=TOKEN,
        aes_key=AES_KEY,
        callback_url="http://siyu/wecom/callback",
    )
    siyu_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(siyu)), base_url="http://siyu"
    )
    wecom_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(fake)), base_url="http://wecom"
    )
    client = WeComClient(corp_id=CORP_ID, secret=SECRET, http=wecom_http)
    return Harness(siyu=siyu, fake=fake, siyu_http=siyu_http, client=client)


def xiao_li(siyu: Siyu) -> None:
    """Guide Xiao Li (WeCom userid `xiaoli`) of store SH001."""
    with siyu.session_factory() as session:
        guide_xiao_li(session, store=store_sh001(session))
        session.commit()


async def greeting_code(h: Harness) -> None:
    """Xiao Li's personal channel code (state `g-xiaoli`) greeting with "Hi {name}"."""
    await growth.create_channel_code(
        session_factory=h.siyu.session_factory,
        gateway=h.client.add_contact_way,
        name="Xiao Li card",
        scope=CodeScope.GUIDE,
        userids=["xiaoli"],
        state="g-xiaoli",
        welcome={"text": "Hi {name}"},
        now=h.siyu.clock.now(),
    )
