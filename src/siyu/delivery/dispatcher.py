"""The dispatcher: claims due outbox rows, applies policy, sends through channels, records why.

Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL so several workers never take the
same message; SQLite has one writer, so one worker. Each batch is one transaction: the channel
call happens while the row is locked and the outcome commits with the batch. A crash after a
provider accepted a message but before the commit re-sends it on restart; the idempotency key
is passed to every provider (SMS OutId, webhook header, email Message-ID) so receivers can
de-duplicate. That is the honest limit of any outbox in front of an external API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.db import transaction
from siyu.delivery import policy, sources
from siyu.delivery.interface import Channel, ChannelFailure, OutboundMessage
from siyu.delivery.models import Decision, DeliveryDecision, OutboxMessage, OutboxStatus

MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(minutes=1)


@dataclass
class DispatchReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, decision: Decision) -> None:
        self.counts[decision.value] = self.counts.get(decision.value, 0) + 1

    @property
    def handled(self) -> int:
        return sum(self.counts.values())


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8… minutes after the n-th failure."""
    factor: int = 2 ** max(attempts - 1, 0)
    return BACKOFF_BASE * factor


def dispatch_due(
    *,
    session_factory: sessionmaker[Session],
    channels: Mapping[str, Channel],
    now: datetime,
    tz: ZoneInfo,
    batch_size: int = 500,
    max_batches: int | None = None,
) -> DispatchReport:
    """Dispatch every due message, batch by batch, until none is due (or `max_batches`)."""
    report = DispatchReport()
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction(session_factory) as db_session:
            claimed = _claim(db_session, now=now, limit=batch_size)
            for message in claimed:
                report.add(_dispatch_one(db_session, message, channels=channels, now=now, tz=tz))
                db_session.flush()  # later messages of the batch see this one in caps/dedup
        batches += 1
        if len(claimed) < batch_size:
            break
    return report


def _claim(db_session: Session, *, now: datetime, limit: int) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if db_session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(db_session.scalars(query))


def _dispatch_one(
    db: Session,
    message: OutboxMessage,
    *,
    channels: Mapping[str, Channel],
    now: datetime,
    tz: ZoneInfo,
) -> Decision:
    verdict = policy.evaluate(db_session=db, message=message, now=now, tz=tz)
    if verdict.decision == Decision.HELD:
        assert verdict.hold_until is not None
        message.not_before = verdict.hold_until
        return _decide(db, message, Decision.HELD, verdict.reason, now)
    if verdict.decision == Decision.SUPPRESSED:
        message.status = OutboxStatus.SUPPRESSED
        message.reason = verdict.reason
        _emit(db, message, "message_suppressed", now, {"reason": verdict.reason})
        return _decide(db, message, Decision.SUPPRESSED, verdict.reason, now)
    return _send(db, message, channel=channels.get(message.channel), now=now)


def _send(
    db: Session, message: OutboxMessage, *, channel: Channel | None, now: datetime
) -> Decision:
    message.attempts += 1
    try:
        if channel is None:
            raise ChannelFailure(f"channel {message.channel!r} is not configured", permanent=True)
        result = channel.send(_outbound(message))
    except ChannelFailure as failure:
        return _failed(db, message, failure, now)
    message.status = OutboxStatus.SENT
    message.sent_at = now
    message.provider_message_id = result.provider_message_id
    message.reason = None
    _emit(db, message, "message_sent", now, {"provider_message_id": result.provider_message_id})
    return _decide(db, message, Decision.SENT, f"sent via {message.channel}", now)


def _failed(
    db: Session, message: OutboxMessage, failure: ChannelFailure, now: datetime
) -> Decision:
    message.last_error = str(failure)
    if failure.permanent or message.attempts >= MAX_ATTEMPTS:
        message.status = OutboxStatus.DEAD
        message.reason = f"dead after {message.attempts} attempt(s): {failure}"[:200]
        _emit(db, message, "message_failed", now, {"error": str(failure), "final": True})
        return _decide(db, message, Decision.DEAD, message.reason, now)
    message.not_before = now + backoff(message.attempts)
    reason = (
        f"attempt {message.attempts} failed, retry at {message.not_before.isoformat()}: {failure}"
    )
    _emit(db, message, "message_failed", now, {"error": str(failure), "final": False})
    return _decide(db, message, Decision.FAILED, reason[:200], now)


def _outbound(message: OutboxMessage) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=message.idempotency_key,
        channel=message.channel,
        recipient=message.recipient or "",
        subject=message.subject,
        body=message.body,
        payload=dict(message.payload or {}),
        member_id=message.member_id,
    )


def _decide(
    db: Session, message: OutboxMessage, decision: Decision, reason: str, now: datetime
) -> Decision:
    db.add(
        DeliveryDecision(
            outbox_id=message.id,
            member_id=message.member_id,
            channel=message.channel,
            decision=decision,
            reason=reason[:200],
            at=now,
        )
    )
    return decision


def _emit(
    db: Session, message: OutboxMessage, kind: str, now: datetime, extra: dict[str, object]
) -> None:
    """Delivery outcomes come back as events (keyed, so a replayed batch adds nothing new)."""
    properties: dict[str, object] = {
        "outbox_id": message.id,
        "channel": message.channel,
        "source": message.source,
        "idempotency_key": message.idempotency_key,
        **extra,
    }
    db.execute(
        insert(sources.events).values(
            event_id=f"delivery:{message.id}:{kind}:{message.attempts}",
            type=kind,
            occurred_at=now,
            member_id=message.member_id,
            identities={},
            properties=properties,
            received_at=now,
        )
    )
