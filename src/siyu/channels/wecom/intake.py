"""Group commit for the callback endpoint: many callbacks, one durable transaction.

At hundreds of callbacks a second, one transaction (one fsync) per callback is what limits the
acknowledgement latency, not the crypto. `InboxBatcher.store(fields)` queues a decrypted
callback and resolves once the batch holding it has committed; a single flusher task writes
whatever arrived while the previous batch was committing (no artificial delay, at most
`max_batch` rows) with INSERT … ON CONFLICT (dedup_key) DO NOTHING, so WeCom's retries and
duplicates inside one batch still land once. The endpoint answers "success" only after the
commit: an acknowledged callback is never lost. A failed batch fails every waiting request
(WeCom retries them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.inbox import dedup_key
from siyu.channels.wecom.models import WeComInbox


def store_batch(
    *, session_factory: sessionmaker[Session], batch: list[dict[str, str]], now: datetime
) -> None:
    """Insert the callbacks in one transaction; ones already stored are skipped."""
    rows = [
        {
            "dedup_key": dedup_key(fields),
            "event": fields.get("Event") or fields.get("MsgType", "unknown"),
            "change_type": fields.get("ChangeType"),
            "payload": fields,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
        }
        for fields in batch
    ]
    with session_factory() as session:
        dialect = session.get_bind().dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(WeComInbox).on_conflict_do_nothing(index_elements=["dedup_key"]), rows
        )
        session.commit()


class InboxBatcher:
    """One per event loop (the app's); see the module docstring."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        now: Callable[[], datetime],
        max_batch: int = 500,
    ) -> None:
        self._session_factory, self._now, self._max = session_factory, now, max_batch
        self._queue: asyncio.Queue[tuple[dict[str, str], asyncio.Future[None]]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self._flusher = self.loop.create_task(self._run())

    async def store(self, fields: dict[str, str]) -> None:
        done: asyncio.Future[None] = self.loop.create_future()
        await self._queue.put((fields, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await asyncio.to_thread(
                    store_batch,
                    session_factory=self._session_factory,
                    batch=[fields for fields, _ in batch],
                    now=self._now(),
                )
            except Exception as error:  # every waiting request answers 500; WeCom retries
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
