"""The outbox: messages enqueued inside the caller's transaction (never commits).

A journey step writes its message here in the same transaction that records the step, so a
crash either keeps both or neither. The idempotency key is UNIQUE: a replay cannot enqueue twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from siyu.delivery import bulk, sources
from siyu.delivery.models import OutboxMessage, OutboxStatus

# Which identity type carries a member's address on each channel.
ADDRESS_IDENTITY = {"sms": "phone", "email": "email", "sandbox": None, "webhook": None}


def enqueue(
    *,
    db_session: Session,
    now: datetime,
    idempotency_key: str,
    channel: str,
    member_id: int | None,
    body: str,
    subject: str = "",
    recipient: str | None = None,
    payload: dict[str, object] | None = None,
    source: str = "",
) -> OutboxMessage:
    """Add a message to the outbox; the dispatcher applies policy before anything leaves."""
    message = OutboxMessage(
        **prepare(
            db_session=db_session,
            now=now,
            idempotency_key=idempotency_key,
            channel=channel,
            member_id=member_id,
            body=body,
            subject=subject,
            recipient=recipient,
            payload=payload,
            source=source,
        )
    )
    db_session.add(message)
    return message


def prepare(
    *,
    db_session: Session,
    now: datetime,
    idempotency_key: str,
    channel: str,
    member_id: int | None,
    body: str,
    subject: str = "",
    recipient: str | None = None,
    payload: dict[str, object] | None = None,
    source: str = "",
    resolve_recipient: bool = True,
) -> dict[str, object]:
    """The outbox row `enqueue` would add, as column values (for `insert_rows` in bulk).

    `resolve_recipient=False` leaves the member's address for `fill_recipients`, which looks a
    whole batch's up in one query per channel instead of one query per message.
    """
    if recipient is None and member_id is not None and resolve_recipient:
        recipient = member_address(db_session=db_session, member_id=member_id, channel=channel)
    return {
        "idempotency_key": idempotency_key,
        "member_id": member_id,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "payload": payload or {},
        "content_hash": content_hash(channel=channel, subject=subject, body=body),
        "source": source,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }


def insert_rows(*, db_session: Session, rows: list[dict[str, object]]) -> None:
    """Write many `prepare`d rows with one multi-row INSERT, in the caller's transaction.

    The journey engine writes a batch's messages this way: the same rows, the same UNIQUE
    idempotency key, without building an ORM object per message.
    """
    bulk.insert_rows(db_session=db_session, table=cast(Table, OutboxMessage.__table__), rows=rows)


def fill_recipients(*, db_session: Session, rows: list[dict[str, object]]) -> None:
    """Set the missing recipient of each member's row, one identity query per channel."""
    wanted: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        if row["recipient"] is None and row["member_id"] is not None:
            wanted.setdefault(str(row["channel"]), []).append(row)
    for channel, missing in wanted.items():
        if channel == "sandbox":
            for row in missing:
                row["recipient"] = f"member:{row['member_id']}"
            continue
        found = _addresses(db_session, channel, {cast(int, row["member_id"]) for row in missing})
        for row in missing:
            row["recipient"] = found.get(cast(int, row["member_id"]))


def _addresses(db_session: Session, channel: str, member_ids: set[int]) -> dict[int, str]:
    identity_type = ADDRESS_IDENTITY.get(channel)
    if identity_type is None:
        return {}
    ids = sources.identities.c
    rows = db_session.execute(
        select(ids.member_id, ids.value)
        .where(
            ids.member_id.in_(sorted(member_ids)),
            ids.type == identity_type,
            ids.polluted.is_(False),
        )
        .order_by(ids.id.desc())
    )
    return {int(member_id): str(value) for member_id, value in rows}  # lowest id wins


def content_hash(*, channel: str, subject: str, body: str) -> str:
    return hashlib.sha256(f"{channel}\x1f{subject}\x1f{body}".encode()).hexdigest()


def member_address(*, db_session: Session, member_id: int, channel: str) -> str | None:
    """The member's address on a channel (sandbox: the member id itself)."""
    identity_type = ADDRESS_IDENTITY.get(channel)
    if channel == "sandbox":
        return f"member:{member_id}"
    if identity_type is None:
        return None
    row = db_session.execute(
        select(sources.identities.c.value)
        .where(
            sources.identities.c.member_id == member_id,
            sources.identities.c.type == identity_type,
            sources.identities.c.polluted.is_(False),
        )
        .limit(1)
    ).first()
    return None if row is None else str(row[0])
