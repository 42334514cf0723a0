"""Channel codes (活码) and attribution.

A code is created in two steps because WeCom is remote: the row is written first (so its
`state` is reserved and nothing exists on WeCom that we do not know about), then
`add_contact_way` is called through a gateway and its `config_id` and QR URL are stored — the
code can never be edited or deleted on WeCom without that config_id.

Attribution rule ("from where it came, back where it goes"): the first code that brought a
member in keeps the credit; later adds through other codes do not move it.

Welcome template: {"text": "...{name}...", "image_url": "...", "miniprogram": {"title",
"appid", "page", "pic_media_id"}} — any subset; `{name}` is the customer's WeCom name.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.growth.errors import GrowthError, GrowthErrorCode
from siyu.growth.models import Attribution, ChannelCode, CodeScope

STATE_MAX = 30  # WeCom's limit on add_contact_way.state
ContactWayGateway = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
WELCOME_KEYS = {"text", "image_url", "miniprogram"}


@dataclass(frozen=True, slots=True)
class CodeView:
    id: int
    name: str
    scope: str
    state: str
    store_code: str | None
    campaign: str | None
    userids: list[str]
    config_id: str | None
    qr_code: str | None
    welcome: dict[str, Any]
    auto_tags: list[str]


def _view(code: ChannelCode) -> CodeView:
    return CodeView(
        id=code.id,
        name=code.name,
        scope=code.scope,
        state=code.state,
        store_code=code.store_code,
        campaign=code.campaign,
        userids=list(code.userids),
        config_id=code.config_id,
        qr_code=code.qr_code,
        welcome=dict(code.welcome),
        auto_tags=list(code.auto_tags),
    )


def check_welcome(welcome: dict[str, Any]) -> None:
    unknown = set(welcome) - WELCOME_KEYS
    if unknown:
        raise GrowthError(GrowthErrorCode.BAD_WELCOME, f"welcome: unknown keys {sorted(unknown)}")
    card = welcome.get("miniprogram")
    if card is not None and not {"title", "appid", "page"} <= set(card):
        raise GrowthError(
            GrowthErrorCode.BAD_WELCOME, "welcome.miniprogram needs title, appid, page"
        )


def _new_state(scope: CodeScope, state: str | None) -> str:
    value = state or f"{scope.value[0]}-{secrets.token_hex(6)}"
    if len(value) > STATE_MAX:
        raise GrowthError(
            GrowthErrorCode.STATE_TOO_LONG, f"state {value!r} is {len(value)} characters (max 30)"
        )
    return value


async def create_channel_code(
    *,
    session_factory: sessionmaker[Session],
    gateway: ContactWayGateway,
    name: str,
    scope: CodeScope,
    userids: list[str],
    now: datetime,
    store_code: str | None = None,
    campaign: str | None = None,
    state: str | None = None,
    welcome: dict[str, Any] | None = None,
    auto_tags: list[str] | None = None,
) -> CodeView:
    """Reserve the state, create the contact way on WeCom, keep its config_id and QR code."""
    if not userids:
        raise GrowthError(GrowthErrorCode.NO_GUIDES, "a channel code needs at least one guide")
    check_welcome(welcome or {})
    value = _new_state(scope, state)
    with transaction(session_factory) as session:
        if session.scalar(sa.select(ChannelCode.id).where(ChannelCode.state == value)):
            raise GrowthError(GrowthErrorCode.STATE_TAKEN, f"state {value!r} is already used")
        code = ChannelCode(
            name=name,
            scope=scope,
            state=value,
            store_code=store_code,
            campaign=campaign,
            userids=userids,
            welcome=welcome or {},
            auto_tags=auto_tags or [],
            created_at=now,
        )
        session.add(code)
        session.flush()
        code_id = code.id
    # type 1 = single guide, 2 = several; scene 2 = QR code (the documented values)
    answer = await gateway(
        {
            "type": 1 if len(userids) == 1 else 2,
            "scene": 2,
            "state": value,
            "user": userids,
            "remark": name[:30],
            "skip_verify": True,
        }
    )
    with transaction(session_factory) as session:
        stored = session.get_one(ChannelCode, code_id)
        stored.config_id = str(answer["config_id"])
        stored.qr_code = answer.get("qr_code")
        return _view(stored)


def list_codes(*, session_factory: sessionmaker[Session]) -> list[CodeView]:
    with session_factory() as session:
        codes = session.scalars(
            sa.select(ChannelCode).where(ChannelCode.deleted_at.is_(None)).order_by(ChannelCode.id)
        )
        return [_view(code) for code in codes]


def code_by_state(session: Session, state: str | None) -> CodeView | None:
    if not state:
        return None
    code = session.scalar(sa.select(ChannelCode).where(ChannelCode.state == state))
    return None if code is None else _view(code)


def attribute(
    session: Session,
    *,
    member_id: int,
    code: CodeView | None,
    userid: str,
    store_code: str | None,
    now: datetime,
) -> bool:
    """Credit the member to code, guide and store unless someone already has it (never commits)."""
    if session.scalar(sa.select(Attribution.id).where(Attribution.member_id == member_id)):
        return False
    session.add(
        Attribution(
            member_id=member_id,
            code_id=code.id if code else None,
            userid=userid,
            store_code=(code.store_code if code and code.store_code else store_code),
            attributed_at=now,
        )
    )
    session.flush()
    return True


@dataclass(frozen=True, slots=True)
class AttributionView:
    member_id: int
    code_id: int | None
    userid: str
    store_code: str | None
    attributed_at: datetime


def attribution_of(
    *, session_factory: sessionmaker[Session], member_id: int
) -> AttributionView | None:
    with session_factory() as session:
        row = session.scalar(sa.select(Attribution).where(Attribution.member_id == member_id))
        if row is None:
            return None
        return AttributionView(
            row.member_id, row.code_id, row.userid, row.store_code, row.attributed_at
        )
