"""WeCom callback endpoint (DESIGN §4.1): GET verifies the URL, POST stores events durably;
plus /api/wecom: channel codes and their statistics.

The POST handler only verifies, decrypts and inserts one inbox row, then answers "success":
WeCom waits at most 5 s and retries 3×, so everything else runs in the worker. A callback that
fails verification is answered 403 and never stored.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.channels.wecom import subscribe
from siyu.channels.wecom.crypto import CallbackCrypto
from siyu.channels.wecom.errors import WeComCryptoError, WeComErrorCode
from siyu.channels.wecom.inbox import callback_crypto, open_callback
from siyu.channels.wecom.intake import InboxBatcher
from siyu.growth import service as growth
from siyu.growth.stats import code_stats

# no prefix: the callback lives at /wecom/callback (called by WeCom, outside /api and its API
# keys; its own signature authenticates it), the JSON API under /api/wecom
router = APIRouter(tags=["wecom"])


def _crypto(request: Request, siyu: SiyuDep) -> CallbackCrypto:
    cached: CallbackCrypto | None = getattr(request.app.state, "wecom_crypto", None)
    if cached is None:
        cached = callback_crypto(siyu.settings)
        request.app.state.wecom_crypto = cached
    return cached


def _refused(error: WeComCryptoError) -> PlainTextResponse:
    status = 503 if error.code is WeComErrorCode.NOT_CONFIGURED else 403
    return PlainTextResponse(f"{error.code.value}: {error}", status_code=status)


@router.get("/wecom/callback", response_class=PlainTextResponse)
def verify_url(
    request: Request, siyu: SiyuDep, msg_signature: str, timestamp: str, nonce: str, echostr: str
) -> PlainTextResponse:
    try:
        plain = _crypto(request, siyu).verify_url(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, echostr=echostr
        )
    except WeComCryptoError as error:
        return _refused(error)
    return PlainTextResponse(plain)


@router.post("/wecom/callback", response_class=PlainTextResponse)
async def receive(
    request: Request, msg_signature: str, timestamp: str, nonce: str
) -> PlainTextResponse:
    """Verify + decrypt inline (sub-millisecond), then group-commit into the inbox (intake)."""
    siyu: Siyu = request.app.state.siyu  # no sync dependency: no threadpool hop per callback
    body = await request.body()
    try:
        fields = open_callback(
            crypto=_crypto(request, siyu),
            msg_signature=msg_signature,
            timestamp=timestamp,
            nonce=nonce,
            body=body,
        )
    except WeComCryptoError as error:
        return _refused(error)
    await _batcher(request, siyu).store(fields)
    return PlainTextResponse("success")


def create_callback_app(siyu: Siyu) -> FastAPI:
    """Only the callback endpoint: the intake to run as its own small process in production
    (`uvicorn --factory`), without the console's and the API's middleware on the hot path."""
    app = FastAPI(title="siyu WeCom callbacks", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.siyu = siyu
    app.add_api_route("/wecom/callback", verify_url, methods=["GET"])
    app.add_api_route("/wecom/callback", receive, methods=["POST"])
    return app


def _batcher(request: Request, siyu: Siyu) -> InboxBatcher:
    batcher: InboxBatcher | None = getattr(request.app.state, "wecom_batcher", None)
    if batcher is None or batcher.loop is not asyncio.get_running_loop():
        batcher = InboxBatcher(session_factory=siyu.session_factory, now=siyu.clock.now)
        request.app.state.wecom_batcher = batcher
    return batcher


@router.get("/api/wecom/codes")
def list_codes(siyu: SiyuDep) -> list[dict[str, Any]]:
    return [asdict(code) for code in growth.list_codes(session_factory=siyu.session_factory)]


@router.get("/api/wecom/codes/stats")
def codes_stats(
    siyu: SiyuDep, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Adds, deletions, net and first-order conversion per channel code (growth.stats)."""
    stats = code_stats(session_factory=siyu.session_factory, since=since, until=until)
    return [asdict(row) for row in stats]


class GrantIn(BaseModel):
    """One accepted wx.requestSubscribeMessage, reported by the mini-program's backend."""

    openid: str = Field(min_length=1, max_length=64)
    template_id: str = Field(min_length=1, max_length=128)
    member_id: int | None = None


@router.post("/api/wecom/subscribe/grants", status_code=201)
def record_grant(grant: GrantIn, siyu: SiyuDep) -> dict[str, Any]:
    """Record a one-time subscription: it allows exactly one message of that template."""
    grant_id = subscribe.record_grant(
        session_factory=siyu.session_factory,
        openid=grant.openid,
        template_id=grant.template_id,
        member_id=grant.member_id,
        now=siyu.clock.now(),
    )
    available = subscribe.available_grants(
        session_factory=siyu.session_factory, openid=grant.openid, template_id=grant.template_id
    )
    return {"grant_id": grant_id, "available": available}


@router.get("/api/wecom/subscribe/grants")
def grants_available(siyu: SiyuDep, openid: str, template_id: str) -> dict[str, Any]:
    available = subscribe.available_grants(
        session_factory=siyu.session_factory, openid=openid, template_id=template_id
    )
    return {"openid": openid, "template_id": template_id, "available": available}
