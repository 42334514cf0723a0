"""The WeCom pass of `siyu worker` (a `journeys.worker.WORKER_HOOKS` entry).

`run_wecom_pass(session_factory=, now=)` handles the callback inbox (events, OneID, follows,
groups, auto-tags, welcomes) and, when a customer-contact secret is configured, polls
staff-confirmed sends: creates on WeCom the sends journeys queued, then asks for results and
sends reminders. `run_inbox_lanes` is the long-running form for a dedicated inbox process: the
welcome lane and the ingest side by side in one event loop (see `welcome_lane`). Without
SIYU_WECOM_CORP_ID and SIYU_WECOM_SECRET there is nobody to ask: the inbox is still processed
from what the callbacks carry (no names/unionids, no welcome calls, no polling) and the pass
does not fail — a siyu that does not use WeCom simply finds an empty inbox.

The hook is synchronous (the worker is); it runs its coroutine with `asyncio.run`, or in a
short-lived thread when called from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.inbox import WeComSettings
from siyu.channels.wecom.models import InboxStatus, WeComInbox
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.sends import close_interrupted_pushes, poll_sends, push_queued_sends
from siyu.channels.wecom.welcome import WELCOME_WINDOW, close_interrupted_welcomes
from siyu.channels.wecom.welcome_lane import WelcomeLane, greet_new_adds
from siyu.clock import Clock
from siyu.config import Settings

T = TypeVar("T")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, even under a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_wrap(make))
    box: dict[str, T] = {}
    failure: list[BaseException] = []

    def target() -> None:
        try:
            box["value"] = asyncio.run(_wrap(make))
        except BaseException as error:  # handed back to the caller's thread below
            failure.append(error)

    thread = threading.Thread(target=target, name="wecom-pass")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box["value"]


async def _wrap(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def configured_client(settings: Settings, extra: WeComSettings) -> WeComClient | None:
    """A client for the configured corp, or None when siyu has no WeCom secret."""
    if not (settings.wecom_corp_id and extra.secret):
        return None
    return WeComClient(
        corp_id=settings.wecom_corp_id, secret=extra.secret, base_url=settings.wecom_api_base
    )


async def wecom_pass(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient | None,
    now: datetime,
    settings: Settings,
    extra: WeComSettings,
) -> int:
    """Inbox, then (with a client) staff-send polling; how many things were done."""
    inbox = await process_inbox(
        session_factory=session_factory,
        client=client,
        now=now,
        tz=settings.tz,
        welcome_window=timedelta(seconds=extra.welcome_window_seconds),
    )
    done = inbox.processed + inbox.failed
    done += close_interrupted_welcomes(session_factory, now=now)
    done += close_interrupted_pushes(session_factory=session_factory, now=now)
    if client is not None:
        done += await push_queued_sends(session_factory=session_factory, client=client, now=now)
        sends = await poll_sends(session_factory=session_factory, client=client, now=now)
        done += sends.confirmed + sends.reminded
    return done


def run_wecom_pass(*, session_factory: sessionmaker[Session], now: datetime) -> int:
    """The worker hook: settings from SIYU_* / SIYU_WECOM_* environment variables."""
    settings, extra = Settings(), WeComSettings()

    async def one_pass() -> int:
        client = configured_client(settings, extra)
        try:
            return await wecom_pass(
                session_factory=session_factory,
                client=client,
                now=now,
                settings=settings,
                extra=extra,
            )
        finally:
            if client is not None:
                await client.aclose()

    return run_sync(one_pass)


async def run_inbox_lanes(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient,
    clock: Clock,
    tz: tzinfo,
    stop: asyncio.Event,
    window: timedelta = WELCOME_WINDOW,
    idle: float = 0.02,
    sweep_every: timedelta = timedelta(minutes=1),
    until_drained: bool = False,
) -> None:
    """Welcome lane and inbox ingest side by side in one event loop until `stop` is set (or,
    with `until_drained`, until a lane pass and an ingest pass in a row both find nothing).

    The ingest's database work runs on a thread (see `process_inbox`), so the lane's WeCom
    calls progress while a backlog is ingested. Idle loops sleep `idle` seconds."""
    lane = WelcomeLane()
    empty = {"lane": False, "ingest": False}

    def found(loop: str, anything: bool) -> None:
        empty[loop] = not anything
        if until_drained and all(empty.values()) and not _inbox_pending(session_factory):
            stop.set()

    async def welcomes() -> None:
        swept = clock.now() - sweep_every
        while not stop.is_set():
            now = clock.now()
            if now - swept >= sweep_every:
                close_interrupted_welcomes(session_factory, now=now)
                swept = now
            done = await greet_new_adds(
                session_factory=session_factory, client=client, lane=lane, now=now, window=window
            )
            found("lane", done.looked_at > 0)
            if done.looked_at == 0:
                await asyncio.sleep(idle)

    async def ingest() -> None:
        while not stop.is_set():
            done = await process_inbox(
                session_factory=session_factory,
                client=client,
                now=clock.now(),
                tz=tz,
                welcome_window=window,
                lane=lane,
            )
            found("ingest", done.processed + done.failed > 0)
            if done.processed + done.failed == 0:
                await asyncio.sleep(idle)

    await asyncio.gather(welcomes(), ingest())


def _inbox_pending(session_factory: sessionmaker[Session]) -> bool:
    with session_factory() as session:
        pending = sa.select(WeComInbox.id).where(WeComInbox.status == InboxStatus.PENDING)
        return session.scalar(pending.limit(1)) is not None
