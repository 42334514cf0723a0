"""Async client for the WeCom customer-contact APIs (客户联系) with the platform's rules built in.

- access_token (7200 s) is cached per (corp, app) in a `TokenCache` shared by every client of
  the process and refreshed single-flight under an asyncio lock: gettoken is never called per
  request, and N concurrent callers with a stale token cause exactly one refresh.
- `RateLimiter`: 10,000 calls/min and 150,000 calls/h per API per corp (fixed windows); a caller
  over the budget waits for the next window instead of earning a 45009 from WeCom.
- Retry policy: 40014/41001/42001 → refresh the token and retry once; -1/45009/45033 → back off
  (0.5 s, 1 s, 2 s …) up to `max_backoff_attempts`, then `WeComError(permanent=False)`; any other
  errcode → `WeComError(permanent=True)` at once.

Endpoints follow the official paths under /cgi-bin/externalcontact/…; payloads are passed
through as dicts (WeCom adds fields often; we read what we need).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from siyu.channels.wecom.errors import BACKOFF_ERRCODES, TOKEN_ERRCODES, WeComError

Json = dict[str, Any]
TOKEN_SAFETY_MARGIN = 300  # refresh 5 min early so an in-flight call never carries a dying token
PER_MINUTE = 10_000
PER_HOUR = 150_000


@dataclass
class _CachedToken:
    value: str
    expires_at: float


@dataclass
class TokenCache:
    """Tokens per (corp id, app key), with one lock per key for single-flight refresh."""

    now: Callable[[], float] = time.monotonic
    _tokens: dict[tuple[str, str], _CachedToken] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    refreshes: int = 0

    def valid(self, key: tuple[str, str]) -> str | None:
        cached = self._tokens.get(key)
        if cached is None or cached.expires_at <= self.now():
            return None
        return cached.value

    async def get(
        self,
        key: tuple[str, str],
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        *,
        stale: str | None = None,
    ) -> str:
        """The cached token, or a fresh one; `stale` is the token a caller saw rejected."""
        current = self.valid(key)
        if current is not None and current != stale:
            return current
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            current = self.valid(key)
            if current is not None and current != stale:
                return current  # another caller refreshed while we waited
            value, expires_in = await fetch()
            self.refreshes += 1
            self._tokens[key] = _CachedToken(
                value, self.now() + max(expires_in - TOKEN_SAFETY_MARGIN, 60)
            )
            return value

    def invalidate(self, key: tuple[str, str]) -> None:
        self._tokens.pop(key, None)


@dataclass
class RateLimiter:
    """Fixed-window budget per (corp, api): 10,000 per minute and 150,000 per hour."""

    per_minute: int = PER_MINUTE
    per_hour: int = PER_HOUR
    now: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _windows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    async def acquire(self, *, corp_id: str, api: str) -> None:
        while True:
            wait = self._try_take(corp_id, api)
            if wait <= 0:
                return
            await self.sleep(wait)

    def _try_take(self, corp_id: str, api: str) -> float:
        instant = self.now()
        minute, hour = int(instant // 60), int(instant // 3600)
        window = self._windows.setdefault((corp_id, api), [minute, 0, hour, 0])
        if window[0] != minute:
            window[0], window[1] = minute, 0
        if window[2] != hour:
            window[2], window[3] = hour, 0
        if window[3] >= self.per_hour:
            return (hour + 1) * 3600 - instant
        if window[1] >= self.per_minute:
            return (minute + 1) * 60 - instant
        window[1] += 1
        window[3] += 1
        return 0.0


class WeComClient:
    """One corp + one app secret (the customer-contact secret or an app with that permission)."""

    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        base_url: str = "https://qyapi.weixin.qq.com",
        http: httpx.AsyncClient | None = None,
        tokens: TokenCache | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_backoff_attempts: int = 3,
        backoff_base: float = 0.5,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        # Keep-alive for as many connections as the workers have calls in flight (32 by
        # default): httpx's default of 20 closes and reopens the rest on every burst.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=64)
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits)
        self._owns_http = http is None
        self.tokens = tokens or TokenCache()
        self.limiter = limiter or RateLimiter()
        self._sleep = sleep
        self._max_backoff = max_backoff_attempts
        self._backoff_base = backoff_base
        self.calls: int = 0

    @property
    def _key(self) -> tuple[str, str]:
        return (
            self.corp_id,
            self._secret[:8],
        )  # the app, without keeping the whole secret as a key

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> WeComClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _fetch_token(self) -> tuple[str, int]:
        params = {"corpid": self.corp_id, "corpsecret": self._secret}
        response = await self._http.get("/cgi-bin/gettoken", params=params)
        body = _json(response, api="gettoken")
        errcode = int(body.get("errcode", 0))
        if errcode != 0:
            raise WeComError(
                api="gettoken",
                errcode=errcode,
                errmsg=str(body.get("errmsg")),
                permanent=errcode not in BACKOFF_ERRCODES,
            )
        return str(body["access_token"]), int(body.get("expires_in", 7200))

    async def call(
        self, api: str, *, payload: Json | None = None, params: dict[str, str] | None = None
    ) -> Json:
        """POST (payload) or GET (params) /cgi-bin/{api} with token, rate limit and retry policy."""
        token = await self.tokens.get(self._key, self._fetch_token)
        refreshed = False
        backoffs = 0
        while True:
            await self.limiter.acquire(corp_id=self.corp_id, api=api)
            body = await self._send(api, token=token, payload=payload, params=params)
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                return body
            errmsg = str(body.get("errmsg", ""))
            if errcode in TOKEN_ERRCODES and not refreshed:
                refreshed = True
                token = await self.tokens.get(self._key, self._fetch_token, stale=token)
                continue
            if errcode in BACKOFF_ERRCODES and backoffs < self._max_backoff:
                await self._sleep(self._backoff_base * 2**backoffs)
                backoffs += 1
                continue
            permanent = errcode not in TOKEN_ERRCODES and errcode not in BACKOFF_ERRCODES
            raise WeComError(api=api, errcode=errcode, errmsg=errmsg, permanent=permanent)

    async def _send(
        self, api: str, *, token: str, payload: Json | None, params: dict[str, str] | None
    ) -> Json:
        self.calls += 1
        query = {"access_token": token, **(params or {})}
        url = f"/cgi-bin/{api}"
        if payload is None:
            response = await self._http.get(url, params=query)
        else:
            response = await self._http.post(url, params=query, json=payload)
        return _json(response, api=api)

    # -- customers and follow users -------------------------------------------------------
    async def get_follow_user_list(self) -> list[str]:
        return list(
            (await self.call("externalcontact/get_follow_user_list", params={}))["follow_user"]
        )

    async def list_customers(self, *, userid: str) -> list[str]:
        body = await self.call("externalcontact/list", params={"userid": userid})
        return list(body.get("external_userid", []))

    async def get_customer(self, *, external_userid: str, cursor: str = "") -> Json:
        return await self.call(
            "externalcontact/get", params={"external_userid": external_userid, "cursor": cursor}
        )

    async def batch_get_customers(
        self, *, userids: list[str], cursor: str = "", limit: int = 100
    ) -> Json:
        payload = {"userid_list": userids, "cursor": cursor, "limit": limit}
        return await self.call("externalcontact/batch/get_by_user", payload=payload)

    async def remark(self, *, userid: str, external_userid: str, remark: str) -> Json:
        payload = {"userid": userid, "external_userid": external_userid, "remark": remark}
        return await self.call("externalcontact/remark", payload=payload)

    # -- contact ways (活码) and welcome ---------------------------------------------------
    async def add_contact_way(self, payload: Json) -> Json:
        return await self.call("externalcontact/add_contact_way", payload=payload)

    async def update_contact_way(self, payload: Json) -> Json:
        return await self.call("externalcontact/update_contact_way", payload=payload)

    async def del_contact_way(self, *, config_id: str) -> Json:
        return await self.call("externalcontact/del_contact_way", payload={"config_id": config_id})

    async def send_welcome_msg(self, payload: Json) -> Json:
        return await self.call("externalcontact/send_welcome_msg", payload=payload)

    # -- mass messages and moments (staff-confirmed tasks) ---------------------------------
    async def add_msg_template(self, payload: Json) -> Json:
        return await self.call("externalcontact/add_msg_template", payload=payload)

    async def get_groupmsg_task(self, *, msgid: str, cursor: str = "", limit: int = 1000) -> Json:
        payload = {"msgid": msgid, "cursor": cursor, "limit": limit}
        return await self.call("externalcontact/get_groupmsg_task", payload=payload)

    async def get_groupmsg_send_result(
        self, *, msgid: str, userid: str, cursor: str = "", limit: int = 1000
    ) -> Json:
        payload = {"msgid": msgid, "userid": userid, "cursor": cursor, "limit": limit}
        return await self.call("externalcontact/get_groupmsg_send_result", payload=payload)

    async def remind_groupmsg_send(self, *, msgid: str) -> Json:
        return await self.call("externalcontact/remind_groupmsg_send", payload={"msgid": msgid})

    async def add_moment_task(self, payload: Json) -> Json:
        return await self.call("externalcontact/add_moment_task", payload=payload)

    async def get_moment_task_result(self, *, jobid: str) -> Json:
        return await self.call("externalcontact/get_moment_task_result", params={"jobid": jobid})

    async def get_moment_task(self, *, moment_id: str, cursor: str = "", limit: int = 1000) -> Json:
        payload = {"moment_id": moment_id, "cursor": cursor, "limit": limit}
        return await self.call("externalcontact/get_moment_task", payload=payload)

    # -- customer groups -------------------------------------------------------------------
    async def list_group_chats(
        self, *, cursor: str = "", limit: int = 1000, status_filter: int = 0
    ) -> Json:
        payload = {"status_filter": status_filter, "cursor": cursor, "limit": limit}
        return await self.call("externalcontact/groupchat/list", payload=payload)

    async def get_group_chat(self, *, chat_id: str) -> Json:
        return await self.call(
            "externalcontact/groupchat/get", payload={"chat_id": chat_id, "need_name": 1}
        )

    # -- corp tags -------------------------------------------------------------------------
    async def get_corp_tag_list(self, *, group_ids: list[str] | None = None) -> Json:
        return await self.call(
            "externalcontact/get_corp_tag_list", payload={"group_id": group_ids or []}
        )

    async def add_corp_tag(self, payload: Json) -> Json:
        return await self.call("externalcontact/add_corp_tag", payload=payload)

    async def mark_tag(
        self,
        *,
        userid: str,
        external_userid: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Json:
        payload = {
            "userid": userid,
            "external_userid": external_userid,
            "add_tag": list(add),
            "remove_tag": list(remove),
        }
        return await self.call("externalcontact/mark_tag", payload=payload)

    # -- transfers and behaviour -----------------------------------------------------------
    async def transfer_customer(
        self, *, handover_userid: str, takeover_userid: str, external_userids: list[str]
    ) -> Json:
        payload = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": external_userids,
        }
        return await self.call("externalcontact/transfer_customer", payload=payload)

    async def resigned_transfer_customer(
        self, *, handover_userid: str, takeover_userid: str, external_userids: list[str]
    ) -> Json:
        payload = {
            "handover_userid": handover_userid,
            "takeover_userid": takeover_userid,
            "external_userid": external_userids,
        }
        return await self.call("externalcontact/resigned/transfer_customer", payload=payload)

    async def get_user_behavior_data(
        self, *, userids: list[str], start_time: int, end_time: int
    ) -> Json:
        payload = {"userid": userids, "start_time": start_time, "end_time": end_time}
        return await self.call("externalcontact/get_user_behavior_data", payload=payload)


def _json(response: httpx.Response, *, api: str) -> Json:
    if response.status_code >= 500:
        # treated like errcode -1 (system busy): transient
        return {"errcode": -1, "errmsg": f"HTTP {response.status_code}"}
    try:
        body = response.json()
    except ValueError as error:
        raise WeComError(
            api=api, errcode=-2, errmsg="response is not JSON", permanent=True
        ) from error
    if not isinstance(body, dict):
        raise WeComError(
            api=api, errcode=-2, errmsg="response is not a JSON object", permanent=True
        )
    return body
