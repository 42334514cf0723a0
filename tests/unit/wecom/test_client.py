"""The WeCom client's retry policy per errcode, its single-flight token cache and rate limiter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from siyu.channels.wecom.client import RateLimiter, TokenCache, WeComClient
from siyu.channels.wecom.errors import WeComError

Handler = Callable[[httpx.Request], httpx.Response]


class ScriptedWeCom:
    """Answers gettoken with numbered tokens and each API call with the next scripted errcode."""

    def __init__(self, errcodes: list[int]) -> None:
        self.errcodes = errcodes
        self.token_calls = 0
        self.api_calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            self.token_calls += 1
            return httpx.Response(
                200, json={"errcode": 0, "access_token": f"T{self.token_calls}", "expires_in": 7200}
            )
        self.api_calls.append(request.url.params["access_token"])
        errcode = self.errcodes.pop(0) if self.errcodes else 0
        return httpx.Response(
            200, json={"errcode": errcode, "errmsg": "scripted", "follow_user": ["xiaoli"]}
        )


def make_client(server: ScriptedWeCom, sleeps: list[float]) -> WeComClient:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="https://wecom.test")
    return WeComClient(corp_id="wwDemoTea", secret="secret-1234", http=http, sleep=fake_sleep)


def run(server: ScriptedWeCom, sleeps: list[float] | None = None) -> list[str]:
    client = make_client(server, sleeps if sleeps is not None else [])
    return asyncio.run(client.get_follow_user_list())


@pytest.mark.parametrize("errcode", [40014, 41001, 42001])
def test_a_token_error_refreshes_the_token_and_retries_once(errcode: int) -> None:
    server = ScriptedWeCom([errcode])

    assert run(server) == ["xiaoli"]

    assert server.token_calls == 2
    assert server.api_calls == ["T1", "T2"]


def test_a_second_token_error_after_refreshing_is_raised() -> None:
    server = ScriptedWeCom([42001, 42001])

    with pytest.raises(WeComError) as failed:
        run(server)

    assert failed.value.errcode == 42001
    assert failed.value.permanent is False
    assert server.token_calls == 2


@pytest.mark.parametrize("errcode", [-1, 45009, 45033])
def test_busy_and_rate_limit_errors_back_off_then_succeed(errcode: int) -> None:
    server = ScriptedWeCom([errcode, errcode])
    sleeps: list[float] = []

    assert run(server, sleeps) == ["xiaoli"]

    assert sleeps == [0.5, 1.0]
    assert server.token_calls == 1


def test_backing_off_gives_up_after_three_waits_as_a_transient_error() -> None:
    server = ScriptedWeCom([45009] * 4)
    sleeps: list[float] = []

    with pytest.raises(WeComError) as failed:
        run(server, sleeps)

    assert (failed.value.errcode, failed.value.permanent) == (45009, False)
    assert sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("errcode", [40003, 40096, 41054, 84061, 60011])
def test_every_other_errcode_is_permanent_and_not_retried(errcode: int) -> None:
    server = ScriptedWeCom([errcode])
    sleeps: list[float] = []

    with pytest.raises(WeComError) as failed:
        run(server, sleeps)

    assert (failed.value.errcode, failed.value.permanent) == (errcode, True)
    assert len(server.api_calls) == 1
    assert sleeps == []


def test_an_http_5xx_is_treated_as_busy() -> None:
    answers = iter(
        [httpx.Response(502), httpx.Response(200, json={"errcode": 0, "follow_user": []})]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            return httpx.Response(200, json={"errcode": 0, "access_token": "T", "expires_in": 7200})
        return next(answers)

    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://wecom.test")
    client = WeComClient(corp_id="wwDemoTea", secret="s", http=http, sleep=fake_sleep)

    assert asyncio.run(client.get_follow_user_list()) == []
    assert sleeps == [0.5]


def test_concurrent_callers_share_one_token_refresh() -> None:
    # given 50 concurrent calls on a cold cache, when they run, then gettoken is called once
    server = ScriptedWeCom([])

    async def scenario() -> None:
        client = make_client(server, [])
        await asyncio.gather(*(client.get_follow_user_list() for _ in range(50)))

    asyncio.run(scenario())

    assert server.token_calls == 1
    assert set(server.api_calls) == {"T1"}


def test_the_token_is_reused_until_it_nearly_expires() -> None:
    server = ScriptedWeCom([])
    instant = [0.0]
    tokens = TokenCache(now=lambda: instant[0])
    http = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url="https://wecom.test")
    client = WeComClient(corp_id="wwDemoTea", secret="s", http=http, tokens=tokens)

    async def scenario() -> None:
        await client.get_follow_user_list()
        instant[0] = 6000.0  # still inside 7200 s minus the 300 s margin
        await client.get_follow_user_list()
        instant[0] = 6950.0  # inside the margin: refreshed early
        await client.get_follow_user_list()

    asyncio.run(scenario())

    assert server.api_calls == ["T1", "T1", "T2"]


def test_the_rate_limiter_waits_for_the_next_minute_when_the_budget_is_spent() -> None:
    waits: list[float] = []
    instant = [120.0]

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        instant[0] += seconds

    limiter = RateLimiter(per_minute=3, per_hour=100, now=lambda: instant[0], sleep=fake_sleep)

    async def scenario() -> None:
        for _ in range(4):
            await limiter.acquire(corp_id="wwDemoTea", api="externalcontact/get")
        await limiter.acquire(corp_id="wwDemoTea", api="externalcontact/list")  # its own budget

    asyncio.run(scenario())

    assert waits == [60.0]


def test_the_rate_limiter_enforces_the_hourly_budget() -> None:
    waits: list[float] = []
    instant = [3600.0]

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        instant[0] += seconds

    limiter = RateLimiter(per_minute=10, per_hour=2, now=lambda: instant[0], sleep=fake_sleep)

    async def scenario() -> None:
        for _ in range(3):
            await limiter.acquire(corp_id="wwDemoTea", api="externalcontact/get")

    asyncio.run(scenario())

    assert waits == [3600.0]


def test_post_payloads_are_sent_as_json() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/gettoken":
            return httpx.Response(200, json={"errcode": 0, "access_token": "T", "expires_in": 7200})
        seen.append(json.loads(request.content))
        return httpx.Response(
            200, json={"errcode": 0, "config_id": "cfg-1", "qr_code": "https://qr/1"}
        )

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://wecom.test")
    client = WeComClient(corp_id="wwDemoTea", secret="s", http=http)

    body = asyncio.run(
        client.add_contact_way({"type": 1, "scene": 2, "state": "c-1", "user": ["xiaoli"]})
    )

    assert body["config_id"] == "cfg-1"
    assert seen == [{"type": 1, "scene": 2, "state": "c-1", "user": ["xiaoli"]}]
