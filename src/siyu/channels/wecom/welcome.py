"""The welcome message (`send_welcome_msg`): built from the channel code's template, sent once.

The only fully automatic WeCom message. The `wecom_welcomes` row (unique WelcomeCode) is
claimed with a conditional update (pending → sending), so a replay or a second worker can never
greet twice — we prefer a lost greeting to a duplicate one, and WeCom refuses a used
WelcomeCode anyway. WeCom accepts a WelcomeCode only within 20 s of the add: past the window
the row is closed as `late` with the "welcome_late" reason instead of calling WeCom.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import WeComWelcome, WelcomeStatus

WELCOME_WINDOW = timedelta(seconds=20)  # WeCom refuses a WelcomeCode older than this


def welcome_payload(welcome: dict[str, Any], *, code: str, name: str) -> dict[str, Any] | None:
    payload: dict[str, Any] = {"welcome_code": code}
    if welcome.get("text"):
        payload["text"] = {"content": str(welcome["text"]).replace("{name}", name)}
    attachments: list[dict[str, Any]] = []
    if welcome.get("image_url"):
        attachments.append({"msgtype": "image", "image": {"pic_url": welcome["image_url"]}})
    if welcome.get("miniprogram"):
        attachments.append({"msgtype": "miniprogram", "miniprogram": dict(welcome["miniprogram"])})
    if attachments:
        payload["attachments"] = attachments
    return payload if len(payload) > 1 else None


def _closed_as_late(
    session_factory: sessionmaker[Session], *, welcome_id: int, now: datetime, window: timedelta
) -> bool:
    with session_factory() as session:
        row = session.get_one(WeComWelcome, welcome_id)
        late_by = now - row.added_at
        if row.status != WelcomeStatus.PENDING or late_by <= window:
            return False
        row.status = WelcomeStatus.LATE
        seconds, limit = late_by.total_seconds(), window.total_seconds()
        row.error = f"welcome_late: {seconds:.0f} s after the add (limit {limit:.0f} s)"
        session.commit()
    return True


async def send_welcome(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient,
    welcome_id: int,
    payload: dict[str, Any],
    now: datetime,
    window: timedelta = WELCOME_WINDOW,
) -> WelcomeStatus | None:
    """Claim the welcome row (pending → sending) and call send_welcome_msg at most once.

    WeCom accepts a welcome only within 20 s of the add; past `window` the row is closed as
    `late` (the "welcome_late" decision, with how late it was) instead of calling WeCom.
    """
    if _closed_as_late(session_factory, welcome_id=welcome_id, now=now, window=window):
        return WelcomeStatus.LATE
    with session_factory() as session:
        claimed = session.execute(
            sa.update(WeComWelcome)
            .where(WeComWelcome.id == welcome_id, WeComWelcome.status == WelcomeStatus.PENDING)
            .values(status="sending")
        )
        session.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
    status, error_text = WelcomeStatus.SENT, None
    try:
        await client.send_welcome_msg(payload)
    except WeComError as error:
        status, error_text = WelcomeStatus.FAILED, str(error)
    with session_factory() as session:
        row = session.get_one(WeComWelcome, welcome_id)
        row.status, row.error = status, error_text
        row.sent_at = now if status == WelcomeStatus.SENT else None
        session.commit()
    return status
