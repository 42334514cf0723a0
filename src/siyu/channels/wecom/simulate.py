"""The demo's "simulated WeCom": a person scan-simulates an add and watches what siyu does.

Everything runs in-process: a `FakeWeCom` plays the platform, its callback goes through siyu's
real callback endpoint (ASGI, signed and encrypted), then the inbox worker handles it with a
client pointed at the same fake — welcome sent, tags applied, member attributed.
Callback settings default to a demo corp when SIYU_WECOM_* are not set.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.bootstrap import Siyu
from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.fake_server import FakeWeCom, build_app
from siyu.channels.wecom.processing import ProcessResult, process_inbox
from siyu.growth import service as growth
from siyu.growth.models import CodeScope

DEMO_CORP = "wwDemoTea"
DEMO_TOKEN = "DemoTeaToken"  # noqa: S105 - the simulated corp only
DEMO_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DEMO_SECRET = "demo-tea-contact-secret"  # noqa: S105 - the simulated corp only


@dataclass
class Simulation:
    fake: FakeWeCom
    client: WeComClient
    siyu_http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.siyu_http.aclose()


def start(siyu: Siyu, *, now: Callable[[], float] | None = None) -> Simulation:
    from siyu.api.app import create_app  # the simulation drives siyu's real HTTP endpoint

    settings = siyu.settings
    settings.wecom_corp_id = settings.wecom_corp_id or DEMO_CORP
    settings.wecom_token = settings.wecom_token or DEMO_TOKEN
    settings.wecom_aes_key = settings.wecom_aes_key or DEMO_AES_KEY
    fake = FakeWeCom(
        corp_id=settings.wecom_corp_id,
        secret=DEMO_SECRET,
        token=settings.wecom_token,
        aes_key=settings.wecom_aes_key,
        callback_url="http://siyu/wecom/callback",
        now=now or (lambda: siyu.clock.now().timestamp()),  # the platform shares siyu's clock
    )
    wecom_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(fake)), base_url="http://wecom"
    )
    siyu_http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(siyu)), base_url="http://siyu"
    )
    client = WeComClient(corp_id=fake.corp_id, secret=DEMO_SECRET, http=wecom_http)
    return Simulation(fake=fake, client=client, siyu_http=siyu_http)


async def simulate_add(
    siyu: Siyu,
    *,
    guide: str,
    state: str | None,
    name: str = "Wang Fang",
    unionid: str | None = None,
) -> dict[str, Any]:
    """Scan → callback → inbox → worker; returns what happened, for a person to read."""
    sim = start(siyu)
    try:
        # every simulation starts a fresh fake: give the customer an id no earlier run used
        ext = f"wm{secrets.token_hex(8)}"
        fields = sim.fake.simulate_add(
            userid=guide, state=state, name=name, unionid=unionid, external_userid=ext
        )
        ack = await sim.fake.push(fields, http=sim.siyu_http)
        result: ProcessResult = await process_inbox(
            session_factory=siyu.session_factory,
            client=sim.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
    finally:
        await sim.aclose()
    return {
        "external_userid": fields["ExternalUserID"],
        "callback": f"{ack.status_code} {ack.text}",
        "processed": result.processed,
        "failed": result.failed,
        "welcome_sent": sim.fake.welcomes_sent,
        "wecom_tags": sim.fake.customers[fields["ExternalUserID"]].follow[guide]["tags"],
    }


def demo_mode(siyu: Siyu) -> bool:
    """True when siyu has no WeCom secret: codes and scans go to the simulated WeCom."""
    from siyu.channels.wecom.inbox import WeComSettings

    return not (siyu.settings.wecom_corp_id and WeComSettings().secret)


async def create_code(
    siyu: Siyu,
    *,
    name: str,
    scope: CodeScope,
    guides: list[str],
    state: str | None = None,
    store_code: str | None = None,
    campaign: str | None = None,
    welcome: dict[str, Any] | None = None,
    auto_tags: list[str] | None = None,
) -> growth.CodeView:
    """Create a channel code on the configured WeCom, or on the simulated one in demo mode."""
    from siyu.channels.wecom.inbox import WeComSettings
    from siyu.channels.wecom.worker import configured_client

    live = None if demo_mode(siyu) else configured_client(siyu.settings, WeComSettings())
    sim = start(siyu) if live is None else None
    client = live if live is not None else sim.client  # type: ignore[union-attr]
    try:
        return await growth.create_channel_code(
            session_factory=siyu.session_factory,
            gateway=client.add_contact_way,
            name=name,
            scope=scope,
            userids=guides,
            state=state,
            store_code=store_code,
            campaign=campaign,
            welcome=welcome,
            auto_tags=auto_tags,
            now=siyu.clock.now(),
        )
    finally:
        if sim is not None:
            await sim.aclose()
        if live is not None:
            await live.aclose()
