"""The welcome message (`send_welcome_msg`): built from the channel code's template, sent once.

The only fully automatic WeCom message, and the only WeCom call with a deadline: WeCom accepts
a WelcomeCode only within 20 s of the add. Both paths that greet (the inbox worker and the
welcome lane beside it, see `welcome_lane`) work in batches:

- `write_welcome_rows` stores the adds' welcome rows with one INSERT … ON CONFLICT DO NOTHING
  on the unique WelcomeCode and returns only the rows it created — whoever creates the row
  sends it, so a replay, a second worker or the lane and the ingest racing for the same add
  never greet twice;
- `send_welcomes` closes the ones already past the window as `late` (the "welcome_late"
  decision, with how late), claims the rest in one conditional update (pending → sending),
  calls WeCom concurrently and records the answers in one transaction.

We prefer a lost greeting to a duplicate one (WeCom refuses a used WelcomeCode anyway): a row a
stopped worker left in `sending` is never sent again; `close_interrupted_welcomes` closes it as
failed with the reason, so nothing stays in flight for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import WeComWelcome, WelcomeStatus
from siyu.db import insert_ignoring_duplicates
from siyu.growth import service as growth

WELCOME_WINDOW = timedelta(seconds=20)  # WeCom refuses a WelcomeCode older than this
INTERRUPTED_AFTER = timedelta(minutes=5)  # a claim older than this was never answered
WELCOMES = cast(sa.Table, WeComWelcome.__table__)  # Core, for the batch statements
ADD_CHANGES = frozenset({"add_external_contact", "add_half_external_contact"})


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


def added_at(fields: dict[str, str]) -> datetime:
    """When the callback says the change happened (CreateTime, Unix seconds)."""
    return datetime.fromtimestamp(int(fields.get("CreateTime") or 0), UTC)


def is_add(fields: dict[str, str]) -> bool:
    return (
        fields.get("Event") == "change_external_contact" and fields.get("ChangeType") in ADD_CHANGES
    )


@dataclass(frozen=True)
class PendingWelcome:
    """A stored welcome row this worker created and therefore sends."""

    welcome_id: int
    payload: dict[str, Any]
    added_at: datetime


@dataclass
class WelcomeTally:
    sent: int = 0
    failed: int = 0
    late: int = 0


def write_welcome_rows(
    session: Session, adds: Sequence[tuple[dict[str, str], dict[str, Any]]]
) -> list[PendingWelcome]:
    """Welcome rows for the adds (callback fields, customer from WeCom) that carry a WelcomeCode
    and came through a channel code with a welcome; the caller commits. Returns the rows this
    call created — a WelcomeCode already stored is skipped, its creator sends it."""
    codes: dict[str, growth.CodeView | None] = {}
    rows: list[dict[str, Any]] = []
    payloads: dict[str, dict[str, Any]] = {}
    for fields, contact in adds:
        welcome_code, state = fields.get("WelcomeCode"), fields.get("State")
        if not welcome_code or not state or welcome_code in payloads:
            continue
        if state not in codes:
            codes[state] = growth.code_by_state(session, state)
        code = codes[state]
        if code is None or not code.welcome:
            continue
        name = str(contact.get("name") or "")
        payload = welcome_payload(code.welcome, code=welcome_code, name=name)
        if payload is None:
            continue
        payloads[welcome_code] = payload
        rows.append(
            {
                "welcome_code": welcome_code,
                "userid": fields["UserID"],
                "external_userid": fields["ExternalUserID"],
                "code_id": code.id,
                "status": WelcomeStatus.PENDING,
                "added_at": added_at(fields),
            }
        )
    table = WELCOMES
    created = insert_ignoring_duplicates(
        session, table, rows, returning=(table.c.id, table.c.welcome_code, table.c.added_at)
    )
    return [PendingWelcome(row[0], payloads[row[1]], row[2]) for row in created]


async def send_welcomes(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient,
    welcomes: Sequence[PendingWelcome],
    now: datetime,
    window: timedelta = WELCOME_WINDOW,
    concurrency: int = 32,
) -> WelcomeTally:
    """Close the late ones, claim the rest in one update, send concurrently, record in one
    transaction (see the module docstring). A row another worker claimed is not sent here."""
    tally = WelcomeTally()
    if not welcomes:
        return tally
    timely = {w.welcome_id: w for w in welcomes if now - w.added_at <= window}
    with session_factory() as session:
        for welcome in welcomes:
            if welcome.welcome_id not in timely:
                tally.late += _close_as_late(session, welcome, now=now, window=window)
        claimed = (
            session.scalars(
                sa.update(WeComWelcome)
                .where(WeComWelcome.id.in_(timely), WeComWelcome.status == WelcomeStatus.PENDING)
                .values(status=WelcomeStatus.SENDING)
                .returning(WeComWelcome.id)
            ).all()
            if timely
            else []
        )
        session.commit()
    gate = asyncio.Semaphore(concurrency)

    async def one(welcome: PendingWelcome) -> dict[str, Any]:
        outcome: dict[str, Any] = {"wid": welcome.welcome_id, "new_error": None, "at": now}
        async with gate:
            try:
                await client.send_welcome_msg(welcome.payload)
                outcome["new_status"] = str(WelcomeStatus.SENT)
            except WeComError as error:
                outcome.update(new_status=str(WelcomeStatus.FAILED), new_error=str(error), at=None)
        return outcome

    outcomes = await asyncio.gather(*(one(timely[i]) for i in claimed))
    if outcomes:
        table = WELCOMES
        with session_factory() as session:
            session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("wid"))
                .values(
                    status=sa.bindparam("new_status"),
                    error=sa.bindparam("new_error"),
                    sent_at=sa.bindparam("at"),
                ),
                outcomes,
            )
            session.commit()
    tally.sent = sum(o["new_status"] == WelcomeStatus.SENT for o in outcomes)
    tally.failed = len(outcomes) - tally.sent
    return tally


def _close_as_late(
    session: Session, welcome: PendingWelcome, *, now: datetime, window: timedelta
) -> bool:
    late_by, limit = (now - welcome.added_at).total_seconds(), window.total_seconds()
    closed = session.execute(
        sa.update(WeComWelcome)
        .where(WeComWelcome.id == welcome.welcome_id, WeComWelcome.status == WelcomeStatus.PENDING)
        .values(
            status=WelcomeStatus.LATE,
            error=f"welcome_late: {late_by:.0f} s after the add (limit {limit:.0f} s)",
        )
    )
    return bool(closed.rowcount)  # type: ignore[attr-defined]


def close_interrupted_welcomes(
    session_factory: sessionmaker[Session], *, now: datetime, after: timedelta = INTERRUPTED_AFTER
) -> int:
    """Welcomes claimed but never answered (the worker stopped between the claim and WeCom's
    answer) are closed as failed: whether WeCom got them is unknown, and sending again could
    greet twice."""
    with session_factory() as session:
        closed = session.execute(
            sa.update(WeComWelcome)
            .where(
                WeComWelcome.status == WelcomeStatus.SENDING,
                WeComWelcome.added_at < now - after,
            )
            .values(
                status=WelcomeStatus.FAILED,
                error="interrupted: the worker stopped before WeCom answered; not sent again",
            )
        )
        session.commit()
    return int(closed.rowcount)  # type: ignore[attr-defined]
