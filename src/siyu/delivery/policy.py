"""Delivery policy: may this message leave now? Consent, address, de-duplication, quiet hours, caps.

Decisions where the issue is silent (PIPL-minded, as a demanding brand's DPO would want):
- A withdrawal (granted=false) on the channel or on `*` always suppresses, on every channel.
- Channels in `OPT_IN_CHANNELS` (SMS, email) also need a grant on record; the sandbox and
  operator webhooks without a member do not.
- A message whose content was already sent to the same member on the same channel within
  `DEDUP_WINDOW` is suppressed as a duplicate (a re-published journey must not re-send).
- Quiet hours are checked before caps, so a held message is re-checked against caps when sent.
- Caps count messages actually sent (not held or suppressed) in a rolling window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.delivery.models import (
    ALL_CHANNELS,
    Consent,
    Decision,
    FrequencyCap,
    OutboxMessage,
    OutboxStatus,
    QuietHours,
    QuietRule,
)

OPT_IN_CHANNELS = frozenset({"sms", "email"})
DEDUP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    hold_until: datetime | None = None


SEND = Verdict(Decision.SENT, "policy passed")


def evaluate(
    *, db_session: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo
) -> Verdict:
    """Decide whether `message` may be sent at `now`."""
    for check in (_consent, _address, _duplicate, _quiet_hours, _caps):
        verdict = check(db_session, message, now, tz)
        if verdict is not None:
            return verdict
    return SEND


def _consent(db: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo) -> Verdict | None:
    if message.member_id is None:
        return None
    latest: dict[str, bool] = {}
    rows = db.execute(
        select(Consent.channel, Consent.granted)
        .where(
            Consent.member_id == message.member_id,
            Consent.channel.in_([message.channel, ALL_CHANNELS]),
        )
        .order_by(Consent.id)
    )
    for channel, granted in rows:
        latest[channel] = granted
    if latest.get(ALL_CHANNELS) is False:
        return Verdict(Decision.SUPPRESSED, "unsubscribed from all channels")
    if latest.get(message.channel) is False:
        return Verdict(Decision.SUPPRESSED, f"unsubscribed from {message.channel}")
    if message.channel in OPT_IN_CHANNELS and not latest.get(message.channel):
        return Verdict(Decision.SUPPRESSED, f"no consent on record for {message.channel}")
    return None


def _address(db: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo) -> Verdict | None:
    if message.recipient:
        return None
    return Verdict(Decision.SUPPRESSED, f"no {message.channel} address for the member")


def _duplicate(db: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo) -> Verdict | None:
    if message.member_id is None:
        return None
    earlier = db.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.member_id == message.member_id,
            OutboxMessage.channel == message.channel,
            OutboxMessage.content_hash == message.content_hash,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at > now - DEDUP_WINDOW,
            OutboxMessage.id != message.id,
        )
        .limit(1)
    )
    if earlier is None:
        return None
    return Verdict(Decision.SUPPRESSED, f"duplicate of message {earlier} sent within 24h")


def _quiet_hours(
    db: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo
) -> Verdict | None:
    rules = {
        row.channel: row
        for row in db.scalars(
            select(QuietHours).where(QuietHours.channel.in_([message.channel, ALL_CHANNELS]))
        )
    }
    rule = rules.get(message.channel) or rules.get(ALL_CHANNELS)
    if rule is None:
        return None
    quiet_end = quiet_until(start=rule.start, end=rule.end, now=now, tz=tz)
    if quiet_end is None:
        return None
    window = f"quiet hours {rule.start}-{rule.end} ({rule.channel})"
    if rule.rule == QuietRule.DROP:
        return Verdict(Decision.SUPPRESSED, f"{window}: drop rule")
    return Verdict(Decision.HELD, f"{window}: held", hold_until=quiet_end)


def quiet_until(*, start: str, end: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet period containing `now` ends, or None when `now` is not quiet."""
    local = now.astimezone(tz)
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    clock = local.time()
    wraps = begin > finish  # e.g. 21:00–09:00 spans midnight
    quiet = (begin <= clock or clock < finish) if wraps else (begin <= clock < finish)
    if not quiet:
        return None
    day = local.date()
    if wraps and clock >= begin:
        day += timedelta(days=1)
    return datetime.combine(day, finish, tzinfo=tz)


def _caps(db: Session, message: OutboxMessage, now: datetime, tz: ZoneInfo) -> Verdict | None:
    if message.member_id is None:
        return None
    caps = db.scalars(
        select(FrequencyCap).where(FrequencyCap.channel.in_([message.channel, ALL_CHANNELS]))
    ).all()
    for cap in sorted(caps, key=lambda c: (c.channel, c.window_hours)):
        sent = select(func.count()).where(
            OutboxMessage.member_id == message.member_id,
            OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at > now - timedelta(hours=cap.window_hours),
        )
        if cap.channel != ALL_CHANNELS:
            sent = sent.where(OutboxMessage.channel == cap.channel)
        if (db.scalar(sent) or 0) >= cap.max_messages:
            label = cap.label or f"{cap.max_messages} per {cap.window_hours}h on {cap.channel}"
            return Verdict(Decision.SUPPRESSED, f"frequency cap reached: {label}")
    return None
