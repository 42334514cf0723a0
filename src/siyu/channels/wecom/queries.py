"""Read models of the WeCom channel for the console and the API: staff sends and groups.

Both are scoped by the viewer (`access.scope.visible_staff_nos`): a guide sees their own sends
and the groups they own, a supervisor those of their region's staff, HQ and analysts all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.access.scope import Viewer, visible_staff_nos
from siyu.channels.wecom.models import (
    WeComGroup,
    WeComGroupMember,
    WeComSendRecipient,
    WeComSendTask,
)


@dataclass(frozen=True, slots=True)
class SendRow:
    id: int
    kind: str
    userid: str
    status: str
    source_key: str
    text: str
    recipients: int
    sent: int
    limited: int
    reminders: int
    created_at: datetime
    confirmed_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    chat_id: str
    name: str | None
    owner: str | None
    customers: int
    staff: int
    created_at: datetime | None
    dismissed_at: datetime | None


def list_sends(
    *, session_factory: sessionmaker[Session], viewer: Viewer | None = None, limit: int = 100
) -> list[SendRow]:
    """The latest staff-confirmed sends the viewer may see, with per-recipient counts (covered
    rows not counted)."""
    counted = WeComSendRecipient.status != "covered"
    with session_factory() as session:
        counts = (
            sa.select(
                WeComSendRecipient.send_task_id.label("send_id"),
                sa.func.sum(sa.case((counted, 1), else_=0)).label("recipients"),
                sa.func.sum(sa.case((WeComSendRecipient.status == "sent", 1), else_=0)).label(
                    "sent"
                ),
                sa.func.sum(sa.case((WeComSendRecipient.status == "limited", 1), else_=0)).label(
                    "limited"
                ),
            )
            .group_by(WeComSendRecipient.send_task_id)
            .subquery()
        )
        query = sa.select(WeComSendTask, counts.c.recipients, counts.c.sent, counts.c.limited)
        if (scope := visible_staff_nos(viewer, WeComSendTask.userid)) is not None:
            query = query.where(scope)
        rows = session.execute(
            query.outerjoin(counts, counts.c.send_id == WeComSendTask.id)
            .order_by(WeComSendTask.id.desc())
            .limit(limit)
        ).all()
        return [
            _send_row(task, recipients, sent, limited) for task, recipients, sent, limited in rows
        ]


def _send_row(
    task: WeComSendTask, recipients: int | None, sent: int | None, limited: int | None
) -> SendRow:
    text = task.content.get("text", {}).get("content", "") if task.content else ""
    return SendRow(
        id=task.id,
        kind=task.kind,
        userid=task.userid,
        status=task.status,
        source_key=task.source_key,
        text=str(text),
        recipients=int(recipients or 0),
        sent=int(sent or 0),
        limited=int(limited or 0),
        reminders=len(task.reminders or []),
        created_at=task.created_at,
        confirmed_at=task.confirmed_at,
        error=task.error,
    )


def list_groups(
    *, session_factory: sessionmaker[Session], viewer: Viewer | None = None
) -> list[GroupRow]:
    """Customer groups the viewer may see (by owner) with their current customers and staff."""
    present = WeComGroupMember.left_at.is_(None)
    with session_factory() as session:
        counts = dict(
            (chat, (int(c or 0), int(s or 0)))
            for chat, c, s in session.execute(
                sa.select(
                    WeComGroupMember.chat_id,
                    sa.func.sum(sa.case((WeComGroupMember.member_type == 2, 1), else_=0)),
                    sa.func.sum(sa.case((WeComGroupMember.member_type == 1, 1), else_=0)),
                )
                .where(present)
                .group_by(WeComGroupMember.chat_id)
            ).all()
        )
        query = sa.select(WeComGroup).order_by(WeComGroup.id)
        if (scope := visible_staff_nos(viewer, WeComGroup.owner)) is not None:
            query = query.where(scope)
        groups = session.scalars(query).all()
        return [
            GroupRow(
                chat_id=g.chat_id,
                name=g.name,
                owner=g.owner,
                customers=counts.get(g.chat_id, (0, 0))[0],
                staff=counts.get(g.chat_id, (0, 0))[1],
                created_at=g.created_at,
                dismissed_at=g.dismissed_at,
            )
            for g in groups
        ]
