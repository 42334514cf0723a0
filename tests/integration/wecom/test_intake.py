"""The lean intake app: concurrent callbacks are group-committed, retries land once."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from siyu.api.wecom import create_callback_app
from siyu.bootstrap import Siyu
from siyu.channels.wecom.models import WeComInbox
from tests.integration.wecom.harness import harness


def test_concurrent_callbacks_and_their_retries_are_stored_once_each(siyu: Siyu) -> None:
    # given ten customers scanning at once, and WeCom sending every callback twice
    h = harness(siyu)
    intake = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_callback_app(siyu)), base_url="http://siyu"
    )

    async def scenario() -> list[str]:
        envelopes = [
            h.fake.envelope(
                h.fake.simulate_add(
                    userid="xiaoli", state=None, name=f"Customer {n}", external_userid=f"wm{n}"
                )
            )
            for n in range(10)
        ]
        responses = await asyncio.gather(
            *[
                intake.post("/wecom/callback", params=params, content=body)
                for params, body in envelopes * 2
            ]
        )
        await intake.aclose()
        await h.aclose()
        return [r.text for r in responses]

    # when they all arrive concurrently
    answers = asyncio.run(scenario())

    # then every delivery was acknowledged and each callback is stored once
    assert answers == ["success"] * 20
    with siyu.session_factory() as session:
        stored = session.scalars(sa.select(WeComInbox.payload)).all()
    assert sorted(p["ExternalUserID"] for p in stored) == [f"wm{n}" for n in range(10)]


def test_the_intake_refuses_a_forged_callback(siyu: Siyu) -> None:
    h = harness(siyu)
    intake = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_callback_app(siyu)), base_url="http://siyu"
    )

    async def scenario() -> int:
        params, body = h.fake.envelope({"Event": "change_external_contact"})
        response = await intake.post(
            "/wecom/callback", params={**params, "msg_signature": "0" * 40}, content=body
        )
        await intake.aclose()
        await h.aclose()
        return response.status_code

    assert asyncio.run(scenario()) == 403
