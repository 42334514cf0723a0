"""Use cases of delivery: consent, policy rows, provider receipts, and reading the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from siyu.audit import service as audit_service
from siyu.delivery import sources
from siyu.delivery.errors import DeliveryError, DeliveryErrorCode
from siyu.delivery.models import (
    Consent,
    DeliveryDecision,
    FrequencyCap,
    OutboxMessage,
    QuietHours,
    QuietRule,
)
from siyu.identity.models import Member


@dataclass(frozen=True)
class OutboxRead:
    id: int
    idempotency_key: str
    member_id: int | None
    channel: str
    recipient: str | None
    subject: str
    body: str
    status: str
    reason: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    source: str = ""
    not_before: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class DecisionRead:
    """One policy/dispatch decision about an outbox message: sent, held, suppressed… and why."""

    id: int
    outbox_id: int
    member_id: int | None
    channel: str
    decision: str
    reason: str
    at: datetime


def record_consent(
    *,
    db_session: Session,
    now: datetime,
    member_id: int,
    channel: str,
    granted: bool,
    source: str,
    actor: str = "system",
) -> None:
    """Record a grant or a withdrawal (unsubscribe); the newest row per channel is in force."""
    if db_session.get(Member, member_id) is None:
        raise DeliveryError(DeliveryErrorCode.MEMBER_NOT_FOUND, f"no member {member_id}")
    db_session.add(
        Consent(
            member_id=member_id, channel=channel, granted=granted, source=source, recorded_at=now
        )
    )
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=actor,
        action="consent.granted" if granted else "consent.withdrawn",
        entity_type="member",
        entity_id=member_id,
        detail={"channel": channel, "source": source},
    )


def set_frequency_cap(
    *, db_session: Session, channel: str, max_messages: int, window_hours: int, label: str = ""
) -> FrequencyCap:
    """Create or change the cap for (channel, window): e.g. WeCom 4 per 720h."""
    if max_messages < 0 or window_hours <= 0:
        raise DeliveryError(
            DeliveryErrorCode.INVALID_POLICY, "a cap needs max_messages >= 0 and window_hours > 0"
        )
    cap = db_session.scalar(
        select(FrequencyCap).where(
            FrequencyCap.channel == channel, FrequencyCap.window_hours == window_hours
        )
    )
    if cap is None:
        cap = FrequencyCap(
            channel=channel, window_hours=window_hours, max_messages=max_messages, label=label
        )
        db_session.add(cap)
    cap.max_messages, cap.label = max_messages, label
    return cap


def set_quiet_hours(
    *, db_session: Session, channel: str, start: str, end: str, rule: QuietRule
) -> QuietHours:
    """Create or change the quiet hours of a channel (or `*`), with the hold-or-drop rule."""
    for value in (start, end):
        try:
            time.fromisoformat(value)
        except ValueError as error:
            raise DeliveryError(
                DeliveryErrorCode.INVALID_POLICY, f"quiet hours: {value!r} is not HH:MM"
            ) from error
    row = db_session.scalar(select(QuietHours).where(QuietHours.channel == channel))
    if row is None:
        row = QuietHours(channel=channel, start=start, end=end, rule=rule)
        db_session.add(row)
    row.start, row.end, row.rule = start, end, rule
    return row


def record_receipt(
    *, db_session: Session, now: datetime, provider_message_id: str, status: str, detail: str = ""
) -> bool:
    """A provider's delivery report comes back as an event; False if the message is unknown."""
    message = db_session.scalar(
        select(OutboxMessage).where(OutboxMessage.provider_message_id == provider_message_id)
    )
    if message is None:
        return False
    kind = "message_delivered" if status == "delivered" else "message_failed"
    db_session.execute(
        insert(sources.events).values(
            event_id=f"delivery:{message.id}:receipt:{status}",
            type=kind,
            occurred_at=now,
            member_id=message.member_id,
            identities={},
            properties={
                "outbox_id": message.id,
                "channel": message.channel,
                "status": status,
                "detail": detail,
            },
            received_at=now,
        )
    )
    return True


def list_outbox(
    *,
    db_session: Session,
    channel: str | None = None,
    member_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[OutboxRead]:
    """Newest first, optionally one channel, member or status (pending/sent/suppressed/dead)."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if member_id is not None:
        query = query.where(OutboxMessage.member_id == member_id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return [_read(row) for row in db_session.scalars(query)]


def get_message(*, db_session: Session, outbox_id: int) -> OutboxRead:
    row = db_session.get(OutboxMessage, outbox_id)
    if row is None:
        raise DeliveryError(DeliveryErrorCode.NOT_FOUND, f"no outbox message {outbox_id}")
    return _read(row)


def list_decisions(
    *,
    db_session: Session,
    outbox_id: int | None = None,
    decision: str | None = None,
    limit: int = 100,
) -> list[DecisionRead]:
    """Every decision the dispatcher recorded, newest first (one message may have several:
    held at 22:00, then sent at 08:00)."""
    d = DeliveryDecision
    query = select(d).order_by(d.id.desc()).limit(limit)
    if outbox_id is not None:
        query = query.where(d.outbox_id == outbox_id)
    if decision is not None:
        query = query.where(d.decision == decision)
    return [
        DecisionRead(
            id=r.id,
            outbox_id=r.outbox_id,
            member_id=r.member_id,
            channel=r.channel,
            decision=r.decision,
            reason=r.reason,
            at=r.at,
        )
        for r in db_session.scalars(query)
    ]


def count_decisions(*, db_session: Session) -> dict[str, int]:
    rows = db_session.execute(
        select(DeliveryDecision.decision, func.count()).group_by(DeliveryDecision.decision)
    )
    return {decision: count for decision, count in rows}


def count_by_status(*, db_session: Session) -> dict[str, int]:
    rows = db_session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    )
    return {status: count for status, count in rows}


def _read(row: OutboxMessage) -> OutboxRead:
    return OutboxRead(
        id=row.id,
        idempotency_key=row.idempotency_key,
        member_id=row.member_id,
        channel=row.channel,
        recipient=row.recipient,
        subject=row.subject,
        body=row.body,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        source=row.source,
        not_before=row.not_before,
        last_error=row.last_error,
    )
