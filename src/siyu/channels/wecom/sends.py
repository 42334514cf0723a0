"""Staff-mediated WeCom sends: 1:1 mass messages, group messages and moments.

WeCom only creates a task that the guide confirms in the WeCom client (add_msg_template /
add_moment_task), so each send is (1) a guide task in the staff task centre, (2) our tracking
row with WeCom's msgid/jobid, (3) polling of get_groupmsg_task / get_groupmsg_send_result /
get_moment_task_result / get_moment_task that ticks members off (`mark_member_done`) and
closes the guide task (`complete_task`) when WeCom reports the send.

Reminders: `remind_groupmsg_send` at most 3 times per task in any 24 h, and not more often than
every 2 h. Moments have no reminder API: the guide task itself stays visible.

Interrupted pushes: a send is claimed (`pushing`, with `claimed_at`) before the WeCom task is
created. A worker that stops between the claim and recording WeCom's answer leaves it there;
after 10 minutes `close_interrupted_pushes` closes it as failed with the reason rather than
creating it again — WeCom has no idempotency key, a retry could put the same task twice in the
guide's WeCom, and the guide task in siyu's task centre still shows the guide what to send.

Caps: WeCom's per-customer monthly cap is a platform setting that changes (as many per month
as the month has days today; admins may choose 7/week or 1/day) → `monthly_cap_per_customer`.
We also keep our own stricter budget (`our_monthly_budget_per_customer`). A customer at either
limit is left out of the WeCom task and recorded as `limited`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer
from siyu.channels.wecom.client import WeComClient
from siyu.channels.wecom.errors import WeComDomainError, WeComError, WeComErrorCode
from siyu.channels.wecom.inbox import WeComSettings
from siyu.channels.wecom.models import (
    SendKind,
    SendStatus,
    WeComFollow,
    WeComSendRecipient,
    WeComSendTask,
)
from siyu.staff import tasks as staff_tasks

MAX_REMINDERS_PER_DAY = 3
INTERRUPTED_PUSH_AFTER = timedelta(minutes=10)
REMIND_EVERY = timedelta(hours=2)
staff_table = sa.table("staff", sa.column("id", sa.BigInteger), sa.column("staff_no", sa.String))
TASK_KIND = {
    SendKind.SINGLE: "mass_message",
    SendKind.GROUP: "mass_message",
    SendKind.MOMENT: "moment",
}


@dataclass
class SendOutcome:
    send_task_id: int
    guide_task_id: int
    msgid: str | None
    jobid: str | None
    included: int
    limited: int


def _guide_id(session: Session, userid: str) -> int:
    guide_id = session.scalar(sa.select(staff_table.c.id).where(staff_table.c.staff_no == userid))
    if guide_id is None:
        raise WeComDomainError(WeComErrorCode.UNKNOWN_GUIDE, f"no staff with staff_no {userid!r}")
    return int(guide_id)


def _month(now: datetime, tz: tzinfo) -> str:
    return now.astimezone(tz).strftime("%Y-%m")


def _within_budget(
    session: Session, *, members: dict[str, int | None], month: str, limit: int
) -> set[str]:
    counted = dict(
        session.execute(
            sa.select(WeComSendRecipient.target, sa.func.count())
            .where(
                WeComSendRecipient.month == month,
                WeComSendRecipient.status.in_(("pending", "sent")),
                WeComSendRecipient.target.in_(list(members)),
            )
            .group_by(WeComSendRecipient.target)
        ).all()
    )
    return {target for target in members if counted.get(target, 0) < limit}


def _targets(session: Session, *, userid: str, member_ids: list[int]) -> dict[str, int | None]:
    """external_userid of each member who still follows this guide."""
    rows = session.execute(
        sa.select(WeComFollow.external_userid, WeComFollow.member_id).where(
            WeComFollow.userid == userid,
            WeComFollow.member_id.in_(member_ids),
            WeComFollow.deleted_at.is_(None),
        )
    ).all()
    return {ext: member for ext, member in rows}


async def create_staff_send(
    *,
    session_factory: sessionmaker[Session],
    client: WeComClient,
    kind: SendKind,
    userid: str,
    source_key: str,
    title: str,
    content: dict[str, Any],
    now: datetime,
    tz: tzinfo,
    member_ids: list[int] | None = None,
    chat_ids: list[str] | None = None,
    settings: WeComSettings | None = None,
    due_in: timedelta = timedelta(days=1),
) -> SendOutcome:
    """Guide task + WeCom task for one guide; idempotent on `source_key`."""
    config = settings or WeComSettings()
    limit = min(config.monthly_cap_per_customer, config.our_monthly_budget_per_customer)
    with session_factory() as session:
        existing = session.scalar(
            sa.select(WeComSendTask).where(WeComSendTask.source_key == source_key)
        )
        if existing is not None:
            return _outcome(session, existing)
        guide_id = _guide_id(session, userid)
        targets = (
            _targets(session, userid=userid, member_ids=member_ids or [])
            if kind == SendKind.SINGLE
            else {}
        )
        allowed = (
            _within_budget(session, members=targets, month=_month(now, tz), limit=limit)
            if targets
            else set()
        )
        task = staff_tasks.create_guide_task(
            session,
            kind=TASK_KIND[kind],
            title=title,
            guide_id=guide_id,
            member_ids=[m for t, m in targets.items() if t in allowed and m is not None],
            due_at=now + due_in,
            source="wecom",
            source_key=f"wecom:{source_key}",
            body=str(content.get("text", {}).get("content", "")) or None,
            payload={"wecom_kind": kind.value},
            now=now,
        )
        row = WeComSendTask(
            source_key=source_key,
            kind=kind,
            userid=userid,
            guide_task_id=task.id,
            content=content,
            created_at=now,
            reminders=[],
            status=SendStatus.PUSHING,  # created on WeCom right below, by this call
            claimed_at=now,
        )
        session.add(row)
        session.flush()
        for target, member_id in targets.items():
            status = "pending" if target in allowed else "limited"
            session.add(
                WeComSendRecipient(
                    send_task_id=row.id,
                    target=target,
                    member_id=member_id,
                    month=_month(now, tz),
                    status=status,
                )
            )
        for chat_id in chat_ids or []:
            session.add(
                WeComSendRecipient(send_task_id=row.id, target=chat_id, month=_month(now, tz))
            )
        session.commit()
        send_id = row.id
        sendable = sorted(allowed) if kind == SendKind.SINGLE else list(chat_ids or [])
    await _create_on_wecom(session_factory, client, send_id, kind, userid, content, sendable)
    with session_factory() as session:
        return _outcome(session, session.get_one(WeComSendTask, send_id))


async def _create_on_wecom(
    session_factory: sessionmaker[Session],
    client: WeComClient,
    send_id: int,
    kind: SendKind,
    userid: str,
    content: dict[str, Any],
    targets: list[str],
) -> None:
    msgid = jobid = error = None
    try:
        if kind == SendKind.MOMENT:
            body = {**content, "visible_range": {"sender_list": {"user_list": [userid]}}}
            jobid = str((await client.add_moment_task(body))["jobid"])
        else:
            body = {**content, "chat_type": kind.value, "sender": userid, "allow_select": False}
            body["external_userid" if kind == SendKind.SINGLE else "chat_id_list"] = targets
            msgid = str((await client.add_msg_template(body))["msgid"])
    except WeComError as failure:
        error = str(failure)
    with session_factory() as session:
        row = session.get_one(WeComSendTask, send_id)
        row.msgid, row.jobid, row.error = msgid, jobid, error
        row.status = SendStatus.FAILED if error else SendStatus.WAITING
        session.commit()


def _outcome(session: Session, row: WeComSendTask) -> SendOutcome:
    statuses = session.scalars(
        sa.select(WeComSendRecipient.status).where(WeComSendRecipient.send_task_id == row.id)
    ).all()
    return SendOutcome(
        send_task_id=row.id,
        guide_task_id=row.guide_task_id or 0,
        msgid=row.msgid,
        jobid=row.jobid,
        included=sum(1 for s in statuses if s != "limited"),
        limited=sum(1 for s in statuses if s == "limited"),
    )


@dataclass
class PollResult:
    confirmed: int = 0
    recipients_sent: int = 0
    reminded: int = 0


async def poll_sends(
    *, session_factory: sessionmaker[Session], client: WeComClient, now: datetime
) -> PollResult:
    """Ask WeCom about every waiting send: confirmations, per-recipient results, reminders."""
    result = PollResult()
    with session_factory() as session:
        waiting = session.scalars(
            sa.select(WeComSendTask.id).where(WeComSendTask.status == SendStatus.WAITING)
        ).all()
    for send_id in waiting:
        with session_factory() as session:
            row = session.get_one(WeComSendTask, send_id)
            confirmed = await (
                _poll_moment(session, client, row, now)
                if row.kind == SendKind.MOMENT
                else _poll_message(session, client, row, now, result)
            )
            if confirmed:
                result.confirmed += 1
                _close_guide_task(session, row, now)
            elif row.msgid and _may_remind(row, now):
                await client.remind_groupmsg_send(msgid=row.msgid)
                row.reminders = [*row.reminders, now.isoformat()]
                result.reminded += 1
            session.commit()
    return result


async def _poll_message(
    session: Session, client: WeComClient, row: WeComSendTask, now: datetime, result: PollResult
) -> bool:
    assert row.msgid is not None
    task = await client.get_groupmsg_task(msgid=row.msgid)
    mine = next((t for t in task.get("task_list", []) if t.get("userid") == row.userid), None)
    if mine is None or int(mine.get("status", 0)) != 2:
        return False
    cursor = ""
    while True:
        page = await client.get_groupmsg_send_result(
            msgid=row.msgid, userid=row.userid, cursor=cursor
        )
        for item in page.get("send_list", []):
            if int(item.get("status", 0)) == 1:
                result.recipients_sent += _recipient_sent(
                    session, row, str(item.get("external_userid") or item.get("chat_id")), now
                )
        cursor = page.get("next_cursor", "")
        if not cursor:
            break
    row.status, row.confirmed_at = SendStatus.SENT, now
    return True


def _recipient_sent(session: Session, row: WeComSendTask, target: str, now: datetime) -> int:
    recipient = session.scalar(
        sa.select(WeComSendRecipient).where(
            WeComSendRecipient.send_task_id == row.id, WeComSendRecipient.target == target
        )
    )
    if recipient is None or recipient.status == "sent":
        return 0
    recipient.status, recipient.sent_at = "sent", now
    if recipient.member_id is not None and row.guide_task_id is not None:
        staff_tasks.mark_member_done(
            session,
            member_id=recipient.member_id,
            now=now,
            task_id=row.guide_task_id,
            result={"by": "wecom"},
        )
    return 1


async def _poll_moment(
    session: Session, client: WeComClient, row: WeComSendTask, now: datetime
) -> bool:
    if row.moment_id is None:
        assert row.jobid is not None
        job = await client.get_moment_task_result(jobid=row.jobid)
        if int(job.get("status", 0)) != 3:
            return False
        row.moment_id = str(job.get("result", {}).get("moment_id"))
    task = await client.get_moment_task(moment_id=row.moment_id)
    mine = next((t for t in task.get("task_list", []) if t.get("userid") == row.userid), None)
    if mine is None or int(mine.get("publish_status", 0)) != 1:
        return False
    row.status, row.confirmed_at = SendStatus.SENT, now
    return True


def _close_guide_task(session: Session, row: WeComSendTask, now: datetime) -> None:
    if row.guide_task_id is None:
        return
    task = staff_tasks.get_task(session, task_id=row.guide_task_id, viewer=Viewer.system("wecom"))
    if task.status == "open":
        staff_tasks.complete_task(
            session,
            task_id=row.guide_task_id,
            viewer=Viewer.system("wecom"),
            now=now,
            result={"wecom": row.msgid or row.moment_id},
        )


def _may_remind(row: WeComSendTask, now: datetime) -> bool:
    recent = [
        datetime.fromisoformat(r)
        for r in row.reminders
        if now - datetime.fromisoformat(r) < timedelta(hours=24)
    ]
    if len(recent) >= MAX_REMINDERS_PER_DAY:
        return False
    last = max(recent, default=row.created_at)
    return now - last >= REMIND_EVERY


async def push_queued_sends(
    *, session_factory: sessionmaker[Session], client: WeComClient, now: datetime
) -> int:
    """Create on WeCom the sends journeys queued (status creating); how many were created.

    Journey actions run inside the step's transaction and may not call WeCom, so they write the
    guide task and a `creating` send row; the next worker pass creates the WeCom task for all
    recipients gathered so far and moves the row to `waiting` (polling takes it from there).
    """
    with session_factory() as session:
        queued = session.execute(
            sa.select(WeComSendTask.id, WeComSendTask.kind, WeComSendTask.userid)
            .where(WeComSendTask.status == SendStatus.CREATING)
            .order_by(WeComSendTask.id)
        ).all()
    pushed = 0
    for send_id, kind, userid in queued:
        with session_factory() as session:
            claimed = session.execute(
                sa.update(WeComSendTask)
                .where(WeComSendTask.id == send_id, WeComSendTask.status == SendStatus.CREATING)
                .values(status=SendStatus.PUSHING, claimed_at=now)
            )
            session.commit()
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another worker has it
            content = session.get_one(WeComSendTask, send_id).content
            targets = list(
                session.scalars(
                    sa.select(WeComSendRecipient.target)
                    .where(
                        WeComSendRecipient.send_task_id == send_id,
                        WeComSendRecipient.status == "pending",
                    )
                    .order_by(WeComSendRecipient.id)
                )
            )
        await _create_on_wecom(
            session_factory, client, send_id, SendKind(kind), userid, content, targets
        )
        pushed += 1
    return pushed


def close_interrupted_pushes(
    *,
    session_factory: sessionmaker[Session],
    now: datetime,
    after: timedelta = INTERRUPTED_PUSH_AFTER,
) -> int:
    """Sends left in `pushing` longer than `after` are closed as failed (see the module
    docstring); how many."""
    with session_factory() as session:
        closed = session.execute(
            sa.update(WeComSendTask)
            .where(
                WeComSendTask.status == SendStatus.PUSHING, WeComSendTask.claimed_at < now - after
            )
            .values(
                status=SendStatus.FAILED,
                error="interrupted: the worker stopped while creating the WeCom task; "
                "not created again (the guide task still shows what to send)",
            )
        )
        session.commit()
    return int(closed.rowcount)  # type: ignore[attr-defined]
