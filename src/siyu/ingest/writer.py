"""One batch of validated rows into the operational store, idempotently, with SQLAlchemy Core.

Duplicates and updates (decided here):
- members: keyed by member_no (or, without one, by the first identity). The same content again
  is a duplicate; changed content updates the record and the member (non-empty values win) and
  releases identity values the record no longer carries (see identity.oneid).
- orders: keyed by (order_id, line_no). The same content again is a duplicate; *different*
  content for a line already imported is rejected — lines are immutable facts that the warehouse
  copies once; a refund arrives as a line with status `refunded`.
- events: keyed by event_id; a second event with the same id is a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.identity import oneid
from siyu.identity.models import Member, MemberRecord
from siyu.identity.oneid import table_of
from siyu.identity.regroup import regroup
from siyu.ingest.bulk import insert_rows
from siyu.ingest.models import Event
from siyu.ingest.readers import SourceRow
from siyu.ingest.validation import (
    MEMBER_IDENTITIES,
    ORDER_IDENTITIES,
    VALIDATORS,
    RowRejected,
    ValidRow,
)
from siyu.orders.models import OrderLine

CHUNK = 900


@dataclass(frozen=True)
class Rejection:
    line: int
    row: dict[str, Any] | None
    reason: str


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    warnings: int = 0
    members_created: int = 0
    merges: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.warnings += other.warnings
        self.members_created += other.members_created
        self.merges += other.merges
        self.rejected.extend(other.rejected)


@dataclass
class _Pending:
    line: int
    source: dict[str, Any]
    valid: ValidRow


def write_batch(
    session: Session,
    *,
    kind: str,
    rows: Sequence[SourceRow],
    tz: tzinfo,
    now: datetime,
    max_member_nos: int,
) -> BatchResult:
    """Validate, de-duplicate and store one batch; the caller owns the transaction."""
    result = BatchResult()
    pending = _validate(kind, rows, tz, result)
    while pending:
        round_rows, pending = _split_repeats(kind, pending, result)
        fresh = _against_store(session, kind, round_rows, now, result)
        if fresh:
            _store(session, kind, fresh, now, max_member_nos, result)
    return result


def _validate(
    kind: str, rows: Sequence[SourceRow], tz: tzinfo, result: BatchResult
) -> list[_Pending]:
    validator = VALIDATORS[kind]
    pending: list[_Pending] = []
    for item in rows:
        if item.row is None or item.error:
            result.rejected.append(Rejection(item.line, item.row, item.error or "unreadable row"))
            continue
        try:
            valid = validator(item.row, tz=tz)
        except RowRejected as error:
            result.rejected.append(Rejection(item.line, item.row, error.reason))
            continue
        pending.append(_Pending(item.line, item.row, valid))
    return pending


def _split_repeats(
    kind: str, pending: list[_Pending], result: BatchResult
) -> tuple[list[_Pending], list[_Pending]]:
    """Rows whose key is first seen now, and rows to apply after them (a later member update)."""
    first: dict[str, _Pending] = {}
    later: list[_Pending] = []
    for item in pending:
        key = item.valid.record.key
        seen = first.get(key)
        if seen is None:
            first[key] = item
        elif seen.valid.row_hash == item.valid.row_hash or kind == "events":
            result.duplicates += 1
        elif kind == "members":
            later.append(item)
        else:
            result.rejected.append(
                Rejection(item.line, item.source, f"order line {key} differs from line {seen.line}")
            )
    return list(first.values()), later


def _against_store(
    session: Session, kind: str, rows: list[_Pending], now: datetime, result: BatchResult
) -> list[_Pending]:
    keys = [item.valid.record.key for item in rows]
    stored = _stored_hashes(session, kind, keys)
    fresh: list[_Pending] = []
    for item in rows:
        key = item.valid.record.key
        if key not in stored:
            fresh.append(item)
        elif kind == "events" or stored[key][1] == item.valid.row_hash:
            result.duplicates += 1
        elif kind == "orders":
            reason = f"order line {key} was already imported with different values"
            result.rejected.append(Rejection(item.line, item.source, reason))
        else:
            _update_member_record(session, stored[key][0], item.valid, now)
            fresh.append(item)
    return fresh


def _stored_hashes(session: Session, kind: str, keys: list[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        if kind == "members":
            t = table_of(MemberRecord)
            statement = sa.select(t.c.record_key, t.c.id, t.c.row_hash).where(
                t.c.record_key.in_(chunk)
            )
        elif kind == "orders":
            t = table_of(OrderLine)
            order_ids = sorted({key.rsplit(":", 1)[0] for key in chunk})
            key_column = t.c.order_id + ":" + sa.cast(t.c.line_no, sa.String)
            statement = sa.select(key_column, t.c.id, t.c.row_hash).where(
                t.c.order_id.in_(order_ids)
            )
        else:
            t = table_of(Event)
            statement = sa.select(t.c.event_id, t.c.id, sa.literal("")).where(
                t.c.event_id.in_(chunk)
            )
        for key, row_id, row_hash in session.execute(statement):
            found[key] = (row_id, row_hash)
    return found


def _update_member_record(session: Session, record_id: int, valid: ValidRow, now: datetime) -> None:
    """A changed member row: release values it dropped, then store its new content."""
    t = table_of(MemberRecord)
    old = session.execute(sa.select(t).where(t.c.id == record_id)).one()
    before = {(k, getattr(old, k)) for k in MEMBER_IDENTITIES if getattr(old, k)}
    dropped = before - set(valid.record.identities)
    if dropped:
        oneid.release(
            session, record_kind="member", record_key=old.record_key, keys=dropped, now=now
        )
    values = {k: v for k, v in valid.values.items() if k in t.c}
    session.execute(
        sa.update(t)
        .where(t.c.id == record_id)
        .values(**values, row_hash=valid.row_hash, updated_at=now)
    )


def _store(
    session: Session,
    kind: str,
    rows: list[_Pending],
    now: datetime,
    max_member_nos: int,
    result: BatchResult,
) -> None:
    outcome = oneid.resolve_batch(
        session,
        records=[item.valid.record for item in rows],
        now=now,
        max_member_nos=max_member_nos,
    )
    result.accepted += len(rows)
    result.warnings += sum(item.valid.warnings for item in rows)
    result.members_created += outcome.created_members
    result.merges += outcome.merges
    owners = outcome.member_of
    member_of = [owners[(item.valid.record.kind, item.valid.record.key)] for item in rows]
    if kind == "members":
        _store_members(session, rows, member_of, outcome.created, now)
    elif kind == "orders":
        evidence = [
            _line_evidence(item.valid.record.identities, outcome.identity_of) for item in rows
        ]
        _insert(session, OrderLine, rows, member_of, {"imported_at": now}, evidence)
    else:
        _insert(session, Event, rows, member_of, {"received_at": now})
    if outcome.to_regroup:
        # A value became polluted: split its owners without it, this batch's records included.
        split = regroup(
            session, member_ids=outcome.to_regroup, now=now, max_member_nos=max_member_nos
        )
        result.merges += split.merges


def _line_evidence(
    identities: Sequence[oneid.Key], identity_of: dict[oneid.Key, int]
) -> dict[str, Any]:
    """An order line's OneID evidence: the identity id of each value it carries (or NULL)."""
    ids = {kind: identity_of[(kind, value)] for kind, value in identities}
    return {f"{kind}_identity_id": ids.get(kind) for kind in ORDER_IDENTITIES}


def _insert(
    session: Session,
    model: Any,
    rows: list[_Pending],
    member_of: list[int],
    extra: dict[str, Any],
    per_row: Sequence[dict[str, Any]] | None = None,
) -> None:
    columns = set(table_of(model).c.keys())
    payload = [
        {
            **{k: v for k, v in item.valid.values.items() if k in columns},
            **({"row_hash": item.valid.row_hash} if "row_hash" in columns else {}),
            "member_id": member_id,
            **extra,
            **(per_row[index] if per_row is not None else {}),
        }
        for index, (item, member_id) in enumerate(zip(rows, member_of, strict=True))
    ]
    insert_rows(session.connection(), table_of(model), payload)


def _store_members(
    session: Session, rows: list[_Pending], member_of: list[int], created: set[int], now: datetime
) -> None:
    t = table_of(MemberRecord)
    existing = _stored_hashes(session, "members", [item.valid.record.key for item in rows])
    new_rows, moved = [], []
    for item, member_id in zip(rows, member_of, strict=True):
        key = item.valid.record.key
        if key in existing:
            moved.append({"rid": existing[key][0], "mid": member_id})
        else:
            values = {k: v for k, v in item.valid.values.items() if k in t.c}
            new_rows.append(
                {
                    **values,
                    "record_key": key,
                    "member_id": member_id,
                    "row_hash": item.valid.row_hash,
                    "updated_at": now,
                }
            )
    insert_rows(session.connection(), t, new_rows)
    if moved:
        statement = (
            sa.update(t).where(t.c.id == sa.bindparam("rid")).values(member_id=sa.bindparam("mid"))
        )
        session.connection().execute(statement, moved)
    _refresh_attributes(session, rows, member_of, created, now)


def _refresh_attributes(
    session: Session, rows: list[_Pending], member_of: list[int], created: set[int], now: datetime
) -> None:
    """Members that existed before take the row's non-empty values (the latest row wins)."""
    t = table_of(Member)
    names = ("name", "birthday", "registered_at", "store_code", "channel")
    params = []
    for item, member_id in zip(rows, member_of, strict=True):
        if member_id in created:
            continue
        values = item.valid.values
        gender = None if values["gender"] == "U" else values["gender"]
        params.append(
            {"mid": member_id, "p_gender": gender, **{f"p_{n}": values[n] for n in names}}
        )
    if not params:
        return
    updates: dict[str, Any] = {
        n: sa.func.coalesce(sa.bindparam(f"p_{n}", type_=t.c[n].type), t.c[n]) for n in names
    }
    updates["gender"] = sa.func.coalesce(
        sa.bindparam("p_gender", type_=t.c.gender.type), t.c.gender
    )
    statement = sa.update(t).where(t.c.id == sa.bindparam("mid")).values(**updates, updated_at=now)
    session.connection().execute(statement, params)
