"""The inbox worker: turns stored callbacks into siyu events, OneID identities, follow
relations, group membership, churn signals, attribution, auto-tags and the welcome message.

Each inbox row is handled in its own transaction (claimed with FOR UPDATE SKIP LOCKED on
PostgreSQL so several workers can share the inbox). WeCom is asked for what the callback does
not carry (the customer's name and unionid, the group's member list) before that transaction,
concurrently for a whole batch. The welcome message (`welcome`) is sent once: the batch's
welcome rows are written and sent before the per-row work, or, when a welcome lane runs beside
the worker (`welcome_lane`), by the lane as soon as the add is in the inbox.

Events written (type, identities = external_userid): wecom_contact_added, wecom_contact_edited,
wecom_contact_deleted (the guide removed the customer), wecom_customer_left (del_follow_user:
the customer deleted the guide — the churn signal), wecom_transfer_failed,
wecom_group_joined / wecom_group_left, wecom_group_dismissed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.errors import WeComError
from siyu.channels.wecom.models import (
    InboxStatus,
    WeComCorpTag,
    WeComCustomer,
    WeComFollow,
    WeComGroup,
    WeComGroupMember,
    WeComInbox,
)
from siyu.channels.wecom.tagmap import mirror_corp_tags
from siyu.channels.wecom.welcome import (
    WELCOME_WINDOW,
    PendingWelcome,
    added_at,
    is_add,
    send_welcomes,
    write_welcome_rows,
)
from siyu.channels.wecom.welcome_lane import WelcomeLane, fetch_contact
from siyu.growth import service as growth
from siyu.ingest.readers import SourceRow
from siyu.ingest.writer import write_batch
from siyu.tags.service import add_tag

log = logging.getLogger(__name__)
LANE_CHUNK = 20  # rows ingested per thread hand-off beside a welcome lane (~0.4 s of work)
LANE_YIELD_LIMIT = 10.0  # seconds an ingest chunk waits at most for a lane that is behind
REMOTE_CONCURRENCY = 32  # WeCom calls in flight per worker (customer/group fetches, welcomes)
events_table = sa.table(
    "events", sa.column("event_id", sa.String), sa.column("member_id", sa.BigInteger)
)
tags_table = sa.table("tags", sa.column("id", sa.BigInteger), sa.column("wecom_tag_id", sa.String))
staff_table = sa.table(
    "staff", sa.column("staff_no", sa.String), sa.column("store_id", sa.BigInteger)
)
stores_table = sa.table("stores", sa.column("id", sa.BigInteger), sa.column("code", sa.String))


@dataclass
class ProcessResult:
    processed: int = 0
    failed: int = 0
    welcomes_sent: int = 0
    welcome_failures: int = 0
    welcomes_late: int = 0
    tags_marked: int = 0


@dataclass
class _Followup:
    """Remote calls to make once the row's transaction has committed."""

    welcomes: list[PendingWelcome] = field(default_factory=list)
    mark: list[tuple[str, str, list[str]]] = field(default_factory=list)


def _ingest(
    session: Session,
    *,
    kind: str,
    fields: dict[str, str],
    ext: str,
    properties: dict[str, Any],
    now: datetime,
    tz: tzinfo,
    contact: dict[str, Any] | None = None,
    store_code: str | None = None,
) -> int | None:
    """Write the event (and the member record with unionid) through OneID; the member id."""
    occurred = added_at(fields)
    event_id = f"wecom:{kind}:{fields.get('UserID', '')}:{ext}:{fields.get('CreateTime', '')}"
    if contact is not None:
        member_row = {
            "external_userid": ext,
            "unionid": contact.get("unionid") or None,
            "name": contact.get("name") or None,
            "store_code": store_code,
            "channel": "wecom",
            "registered_at": occurred.isoformat(),
        }
        write_batch(
            session,
            kind="members",
            rows=[SourceRow(1, member_row)],
            tz=tz,
            now=now,
            max_member_nos=20,
        )
    event_row = {
        "event_id": event_id,
        "type": kind,
        "occurred_at": occurred.isoformat(),
        "identities": {"external_userid": ext},
        "properties": properties,
    }
    result = write_batch(
        session, kind="events", rows=[SourceRow(1, event_row)], tz=tz, now=now, max_member_nos=20
    )
    if result.rejected:
        raise ValueError(f"event {event_id} rejected: {result.rejected[0].reason}")
    return session.scalar(
        sa.select(events_table.c.member_id).where(events_table.c.event_id == event_id)
    )


def _store_of_guide(session: Session, userid: str) -> str | None:
    query = (
        sa.select(stores_table.c.code)
        .select_from(staff_table.join(stores_table, stores_table.c.id == staff_table.c.store_id))
        .where(staff_table.c.staff_no == userid)
    )
    return session.scalar(query)


def _upsert_customer(
    session: Session, *, ext: str, contact: dict[str, Any], member_id: int | None, now: datetime
) -> None:
    customer = session.scalar(sa.select(WeComCustomer).where(WeComCustomer.external_userid == ext))
    if customer is None:
        customer = WeComCustomer(external_userid=ext, updated_at=now)
        session.add(customer)
    customer.unionid = contact.get("unionid") or customer.unionid
    customer.name = contact.get("name") or customer.name
    customer.member_id = member_id or customer.member_id
    customer.updated_at = now


def _follow(session: Session, *, userid: str, ext: str, now: datetime) -> WeComFollow:
    follow = session.scalar(
        sa.select(WeComFollow).where(
            WeComFollow.userid == userid, WeComFollow.external_userid == ext
        )
    )
    if follow is None:
        follow = WeComFollow(userid=userid, external_userid=ext, added_at=now, updated_at=now)
        session.add(follow)
    return follow


def _on_add(
    session: Session, fields: dict[str, str], contact: dict[str, Any], now: datetime, tz: tzinfo
) -> _Followup:
    ext, userid = fields["ExternalUserID"], fields["UserID"]
    code = growth.code_by_state(session, fields.get("State"))
    store_code = (code.store_code if code else None) or _store_of_guide(session, userid)
    properties = {
        "userid": userid,
        "state": fields.get("State"),
        "code_id": code.id if code else None,
    }
    member_id = _ingest(
        session,
        kind="wecom_contact_added",
        fields=fields,
        ext=ext,
        properties=properties,
        now=now,
        tz=tz,
        contact=contact,
        store_code=store_code,
    )
    _upsert_customer(session, ext=ext, contact=contact, member_id=member_id, now=now)
    follow = _follow(session, userid=userid, ext=ext, now=added_at(fields))
    follow.member_id, follow.state, follow.deleted_at, follow.deleted_by = (
        member_id,
        fields.get("State"),
        None,
        None,
    )
    follow.added_at, follow.updated_at = added_at(fields), now
    followup = _Followup()
    if member_id is not None:
        growth.attribute(
            session, member_id=member_id, code=code, userid=userid, store_code=store_code, now=now
        )
    if code and code.auto_tags:
        followup.mark.append((userid, ext, list(code.auto_tags)))
        if member_id is not None:
            _apply_siyu_tags(session, member_id=member_id, wecom_tag_ids=code.auto_tags, now=now)
    followup.welcomes = write_welcome_rows(session, [(fields, contact)])
    return followup


def _apply_siyu_tags(
    session: Session, *, member_id: int, wecom_tag_ids: list[str], now: datetime
) -> None:
    tag_ids = session.scalars(
        sa.select(tags_table.c.id).where(tags_table.c.wecom_tag_id.in_(wecom_tag_ids))
    )
    for tag_id in tag_ids:
        add_tag(
            db_session=session,
            now=now,
            member_id=member_id,
            tag_id=tag_id,
            source="wecom",
            actor="wecom",
        )


def _on_follow_end(
    session: Session, fields: dict[str, str], now: datetime, tz: tzinfo, *, by: str
) -> None:
    ext, userid = fields["ExternalUserID"], fields["UserID"]
    kind = "wecom_customer_left" if by == "customer" else "wecom_contact_deleted"
    member_id = _ingest(
        session, kind=kind, fields=fields, ext=ext, properties={"userid": userid}, now=now, tz=tz
    )
    follow = _follow(session, userid=userid, ext=ext, now=added_at(fields))
    follow.member_id = follow.member_id or member_id
    follow.deleted_at, follow.deleted_by, follow.updated_at = added_at(fields), by, now


def _on_edit(
    session: Session, fields: dict[str, str], contact: dict[str, Any], now: datetime, tz: tzinfo
) -> None:
    ext, userid = fields["ExternalUserID"], fields["UserID"]
    member_id = _ingest(
        session,
        kind="wecom_contact_edited",
        fields=fields,
        ext=ext,
        properties={"userid": userid},
        now=now,
        tz=tz,
    )
    _upsert_customer(session, ext=ext, contact=contact, member_id=member_id, now=now)
    follow = _follow(session, userid=userid, ext=ext, now=added_at(fields))
    mine = next((f for f in contact.get("follow_user", []) if f.get("userid") == userid), None)
    if mine is not None:
        follow.remark = mine.get("remark") or None
    follow.updated_at = now


def apply_group_snapshot(
    session: Session,
    *,
    chat: dict[str, Any],
    fields: dict[str, str] | None,
    now: datetime,
    tz: tzinfo,
) -> tuple[int, int]:
    """Diff WeCom's member list against ours: who joined, who left (callbacks do not always say)."""
    chat_id = str(chat["chat_id"])
    group = session.scalar(sa.select(WeComGroup).where(WeComGroup.chat_id == chat_id))
    if group is None:
        group = WeComGroup(chat_id=chat_id, updated_at=now)
        session.add(group)
    group.name, group.owner, group.updated_at = chat.get("name"), chat.get("owner"), now
    if chat.get("create_time"):
        group.created_at = datetime.fromtimestamp(int(chat["create_time"]), UTC)
    current = {str(m["userid"]): m for m in chat.get("member_list", [])}
    rows = {
        r.member_userid: r
        for r in session.scalars(
            sa.select(WeComGroupMember).where(WeComGroupMember.chat_id == chat_id)
        )
    }
    joined = [u for u in current if u not in rows or rows[u].left_at is not None]
    left = [u for u, r in rows.items() if u not in current and r.left_at is None]
    stamp = fields or {"CreateTime": str(int(now.timestamp()))}
    for userid in joined:
        info = current[userid]
        row = rows.get(userid) or WeComGroupMember(chat_id=chat_id, member_userid=userid)
        row.member_type, row.left_at = int(info.get("type", 2)), None
        row.joined_at = datetime.fromtimestamp(int(info.get("join_time") or now.timestamp()), UTC)
        session.add(row)
        if row.member_type == 2:
            row.member_id = _group_event(
                session, "wecom_group_joined", chat_id, userid, stamp, now, tz
            )
    for userid in left:
        rows[userid].left_at = now
        if rows[userid].member_type == 2:
            _group_event(session, "wecom_group_left", chat_id, userid, stamp, now, tz)
    return len(joined), len(left)


def _group_event(
    session: Session,
    kind: str,
    chat_id: str,
    ext: str,
    fields: dict[str, str],
    now: datetime,
    tz: tzinfo,
) -> int | None:
    stamped = {**fields, "UserID": chat_id}
    return _ingest(
        session, kind=kind, fields=stamped, ext=ext, properties={"chat_id": chat_id}, now=now, tz=tz
    )


async def _remote_context(client: WeComClient | None, fields: dict[str, str]) -> dict[str, Any]:
    """What WeCom knows and the callback does not carry; {} without a client."""
    if client is None:
        return {}
    contact_changes = {"add_external_contact", "add_half_external_contact", "edit_external_contact"}
    if (
        fields.get("Event") == "change_external_contact"
        and fields.get("ExternalUserID")
        and fields.get("ChangeType") in contact_changes
    ):
        return await fetch_contact(client, fields["ExternalUserID"])
    if fields.get("Event") == "change_external_tag" and fields.get("ChangeType") != "delete":
        return {"tag_group": (await client.get_corp_tag_list())["tag_group"]}
    if fields.get("Event") == "change_external_chat" and fields.get("ChangeType") in {
        "create",
        "update",
    }:
        return dict((await client.get_group_chat(chat_id=fields["ChatId"]))["group_chat"])
    return {}


def _handle(
    session: Session, fields: dict[str, str], remote: dict[str, Any], now: datetime, tz: tzinfo
) -> _Followup:
    event, change = fields.get("Event"), fields.get("ChangeType")
    if event == "change_external_contact":
        if change in {"add_external_contact", "add_half_external_contact"}:
            return _on_add(session, fields, remote, now, tz)
        if change == "edit_external_contact":
            _on_edit(session, fields, remote, now, tz)
        elif change == "del_external_contact":
            _on_follow_end(session, fields, now, tz, by="guide")
        elif change == "del_follow_user":
            _on_follow_end(session, fields, now, tz, by="customer")
        elif change == "transfer_fail":
            _ingest(
                session,
                kind="wecom_transfer_failed",
                fields=fields,
                ext=fields["ExternalUserID"],
                properties={
                    "userid": fields.get("UserID"),
                    "fail_reason": fields.get("FailReason"),
                },
                now=now,
                tz=tz,
            )
    elif event == "change_external_chat":
        if change == "dismiss":
            group = session.scalar(
                sa.select(WeComGroup).where(WeComGroup.chat_id == fields["ChatId"])
            )
            if group is not None:
                group.dismissed_at, group.updated_at = added_at(fields), now
        elif remote:
            apply_group_snapshot(session, chat=remote, fields=fields, now=now, tz=tz)
    elif event == "change_external_tag":
        _on_tag_change(session, fields, remote, now)
    return _Followup()


def _on_tag_change(
    session: Session, fields: dict[str, str], remote: dict[str, Any], now: datetime
) -> None:
    """Re-mirror WeCom's tag list; without a client a deletion is still applied locally."""
    if "tag_group" in remote:
        mirror_corp_tags(session, remote=remote["tag_group"], now=now)
        return
    if fields.get("ChangeType") == "delete" and fields.get("Id"):
        by_group = fields.get("TagType") == "tag_group"
        column = WeComCorpTag.group_id if by_group else WeComCorpTag.tag_id
        session.execute(
            sa.update(WeComCorpTag)
            .where(column == fields["Id"])
            .values(deleted=True, updated_at=now)
        )


async def process_inbox(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient | None,
    now: datetime,
    tz: tzinfo,
    limit: int = 200,
    welcome_window: timedelta = WELCOME_WINDOW,
    concurrency: int = REMOTE_CONCURRENCY,
    lane: WelcomeLane | None = None,
) -> ProcessResult:
    """Handle up to `limit` pending callbacks; failures stay visible in the row.

    Throughput without reordering: what WeCom must be asked (customer, group, tags) is fetched
    for the whole batch concurrently (at most `concurrency` calls in flight, the client's rate
    limiter still applies), the database work then runs row by row in arrival order, each row
    in its own transaction, and the welcome messages and tag marks of the batch go out
    concurrently once their rows have committed — the welcome is what has the 20 s deadline.
    With a `lane` (a `welcome_lane.WelcomeLane` running beside this pass) the welcomes are the
    lane's: the customers it fetched are reused, the rows are ingested on a worker thread in
    chunks so the lane's calls are not held up, and each chunk waits while the lane is behind
    (the welcome has the deadline, the ingest has none)."""
    result = ProcessResult()
    with session_factory() as session:
        query = sa.select(WeComInbox.id, WeComInbox.payload).where(
            WeComInbox.status == InboxStatus.PENDING
        )
        if lane is not None:  # the lane sees every callback first (else a welcome would wait)
            query = query.where(WeComInbox.id <= lane.watermark)
        pending = session.execute(query.order_by(WeComInbox.id).limit(limit)).all()
    if not pending:
        return result
    gate = asyncio.Semaphore(concurrency)

    async def remote_of(inbox_id: int, payload: dict[str, str]) -> dict[str, Any] | Exception:
        if lane is not None and (known := lane.contacts.pop(inbox_id, None)) is not None:
            return known
        async with gate:
            try:
                return await _remote_context(client, payload)
            except (WeComError, ValueError, KeyError) as error:
                return error

    remotes = await asyncio.gather(*(remote_of(i, payload) for i, payload in pending))

    async def after_all(followups: Iterable[_Followup | None]) -> None:
        if client is None:
            return
        done = [f for f in followups if f is not None]
        welcomes = await send_welcomes(
            session_factory=session_factory,
            client=client,
            welcomes=[w for f in done for w in f.welcomes],
            now=now,
            window=welcome_window,
            concurrency=concurrency,
        )
        result.welcomes_sent += welcomes.sent
        result.welcome_failures += welcomes.failed
        result.welcomes_late += welcomes.late

        async def mark(userid: str, ext: str, tag_ids: list[str]) -> None:
            async with gate:
                try:
                    await client.mark_tag(userid=userid, external_userid=ext, add=tag_ids)
                    result.tags_marked += 1
                except WeComError as error:
                    log.warning("mark_tag %s/%s failed: %s", userid, ext, error)

        await asyncio.gather(*(mark(*m) for f in done for m in f.mark))

    rows = list(zip((inbox_id for inbox_id, _ in pending), remotes, strict=True))

    def ingest_rows(chunk: list[tuple[int, dict[str, Any] | Exception]]) -> list[_Followup | None]:
        return [_process_one(session_factory, i, remote, now, tz, result) for i, remote in chunk]

    # The welcome has the 20 s deadline: its rows for the whole batch first, sent before the
    # per-row work (which then finds the row and does not welcome again) — unless a welcome
    # lane greets them: then the rows are ingested on a thread, so the event loop (the lane's
    # WeCom calls) is not held up by ~20 ms of database work per add.
    if lane is None:
        batch = [(p, remote) for (_, p), remote in zip(pending, remotes, strict=True)]
        await after_all([_welcomes_first(session_factory, batch)])
        followups = ingest_rows(rows)
    else:
        followups = []
        for start in range(0, len(rows), LANE_CHUNK):
            await _until_lane_caught_up(lane)
            followups += await asyncio.to_thread(ingest_rows, rows[start : start + LANE_CHUNK])
    await after_all(followups)
    return result


async def _until_lane_caught_up(lane: WelcomeLane) -> None:
    """The welcome lane has priority: wait while it is behind (at most LANE_YIELD_LIMIT, so an
    ingest never hangs on a lane that stopped)."""
    waited = 0.0
    while lane.behind and waited < LANE_YIELD_LIMIT:
        await asyncio.sleep(0.05)
        waited += 0.05


def _welcomes_first(
    session_factory: sessionmaker[Session],
    batch: list[tuple[dict[str, str], dict[str, Any] | Exception]],
) -> _Followup:
    """The batch's welcome rows in one transaction (adds whose customer could be fetched)."""
    adds = [(f, r) for f, r in batch if is_add(f) and not isinstance(r, Exception)]
    if not adds:
        return _Followup()
    with session_factory() as session:
        welcomes = write_welcome_rows(session, adds)
        session.commit()
    return _Followup(welcomes=welcomes)


def _process_one(
    session_factory: sessionmaker[Session],
    inbox_id: int,
    remote: dict[str, Any] | Exception,
    now: datetime,
    tz: tzinfo,
    result: ProcessResult,
) -> _Followup | None:
    with session_factory() as session:
        row = session.scalar(
            sa.select(WeComInbox)
            .where(WeComInbox.id == inbox_id, WeComInbox.status == InboxStatus.PENDING)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None  # another worker has it
        row.attempts += 1
        try:
            if isinstance(remote, Exception):
                raise remote
            followup = _handle(session, row.payload, remote, now, tz)
        except (WeComError, ValueError, KeyError) as error:
            session.rollback()
            _fail(
                session_factory, inbox_id, error, now, permanent=getattr(error, "permanent", True)
            )
            result.failed += 1
            return None
        row.status, row.processed_at, row.error = InboxStatus.DONE, now, None
        session.commit()
        result.processed += 1
        return followup


def _fail(
    session_factory: sessionmaker[Session],
    inbox_id: int,
    error: Exception,
    now: datetime,
    *,
    permanent: bool,
) -> None:
    with session_factory() as session:
        row = session.get_one(WeComInbox, inbox_id)
        row.attempts += 1
        row.error = f"{type(error).__name__}: {error}"
        if permanent or row.attempts >= 5:
            row.status, row.processed_at = InboxStatus.FAILED, now
        session.commit()
    log.warning("wecom inbox %s: %s", inbox_id, error)
