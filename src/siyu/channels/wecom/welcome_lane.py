"""The welcome lane: greets new adds as soon as they are in the inbox, ahead of their ingest.

The welcome is the one WeCom call with a deadline (20 s after the add, once); the rest of an add
(OneID, follow, attribution, tags, events: ~30 statements) is not. One ingest runs at ~60 adds/s
on SQLite, so a welcome queued behind the ingest backlog is late at any sustained rate above
that. The lane works on its own watermark over the inbox — the pending callbacks it has not
looked at; the ingest beside it takes callbacks only up to that watermark, so the lane always
sees an add first — and per pass:

1. fetches the customers concurrently (bounded; the client's rate limiter still applies) and
   keeps them in `WelcomeLane.contacts` for the ingest, so an add costs one
   externalcontact/get, not two;
2. writes the pass's welcome rows in one transaction (`welcome.write_welcome_rows`);
3. sends them with `welcome.send_welcomes` (one claim, concurrent calls, one record).

The lane has priority over the ingest in its process: when it reaches adds that are already
more than 2 s old it is `behind`, and the ingest pauses between chunks until it has caught up.
A burst is greeted first and ingested after; under a load the ingest could carry anyway the lane
is never behind and both run.

An add the lane misses (on PostgreSQL an inbox id can become visible after the watermark passed
it; a customer fetch that failed; a restart) is still welcomed by the ingest, which creates the
row when none exists — only later. Exactly-once rests on the unique WelcomeCode (whoever
creates the row sends it) and the claim, not on the lane.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import InboxStatus, WeComInbox
from siyu.channels.wecom.welcome import (
    WELCOME_WINDOW,
    WelcomeTally,
    added_at,
    is_add,
    send_welcomes,
    write_welcome_rows,
)

CONTACT_CACHE_LIMIT = 50_000  # fetched customers kept for the ingest; beyond, it fetches again
BEHIND_AFTER = timedelta(seconds=2)  # adds older than this when the lane reaches them: behind


@dataclass
class WelcomeLane:
    """The lane's state in one worker process: its watermark and the fetched customers."""

    watermark: int = 0
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    behind: bool = False  # the ingest beside the lane pauses while this is set

    def keep(self, inbox_id: int, contact: dict[str, Any]) -> None:
        if len(self.contacts) < CONTACT_CACHE_LIMIT:
            self.contacts[inbox_id] = contact


@dataclass
class LanePass:
    looked_at: int = 0
    welcomes: WelcomeTally = field(default_factory=WelcomeTally)


async def greet_new_adds(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient,
    lane: WelcomeLane,
    now: datetime,
    window: timedelta = WELCOME_WINDOW,
    concurrency: int = 32,
    limit: int = 500,
) -> LanePass:
    """One lane pass over the pending adds past the watermark (see the module docstring)."""
    with session_factory() as session:
        arrived = session.execute(
            sa.select(WeComInbox.id, WeComInbox.payload)
            .where(WeComInbox.status == InboxStatus.PENDING, WeComInbox.id > lane.watermark)
            .order_by(WeComInbox.id)
            .limit(limit)
        ).all()
    done = LanePass(looked_at=len(arrived))
    if not arrived:
        lane.behind = False
        return done
    adds = [(inbox_id, fields) for inbox_id, fields in arrived if is_add(fields)]
    lane.behind = any(now - added_at(fields) > BEHIND_AFTER for _, fields in adds)
    gate = asyncio.Semaphore(concurrency)
    contacts = await asyncio.gather(*(_contact(client, gate, fields) for _, fields in adds))
    fetched = [(i, f, c) for (i, f), c in zip(adds, contacts, strict=True) if c is not None]
    for inbox_id, _, contact in fetched:
        lane.keep(inbox_id, contact)
    with session_factory() as session:
        welcomes = write_welcome_rows(session, [(f, c) for _, f, c in fetched])
        session.commit()
    # Only now may the ingest take these callbacks: their customers are cached and their
    # welcome rows are ours (moved earlier, the ingest fetched again and greeted them itself).
    lane.watermark = arrived[-1].id
    done.welcomes = await send_welcomes(
        session_factory=session_factory,
        client=client,
        welcomes=welcomes,
        now=now,
        window=window,
        concurrency=concurrency,
    )
    return done


async def _contact(
    client: WeComClient, gate: asyncio.Semaphore, fields: dict[str, str]
) -> dict[str, Any] | None:
    """None when there is nothing to greet or WeCom fails (the ingest asks again)."""
    if not fields.get("ExternalUserID") or not fields.get("WelcomeCode"):
        return None
    async with gate:
        try:
            return await fetch_contact(client, fields["ExternalUserID"])
        except WeComError:
            return None


async def fetch_contact(client: WeComClient, external_userid: str) -> dict[str, Any]:
    """The customer as the ingest wants it: the contact plus its follow users."""
    body = await client.get_customer(external_userid=external_userid)
    return {**body.get("external_contact", {}), "follow_user": body.get("follow_user", [])}
