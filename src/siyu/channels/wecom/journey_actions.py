"""Journey actions `wecom_send` and `miniprogram_notify` (found by `siyu.journeys.plugins`).

`wecom_send` is a step "on WeCom"; `miniprogram_notify` is documented on its class.

WeCom sends other than the welcome are tasks the guide confirms, so the step puts the member on
a staff-confirmed send of the member's guide: a guide task (staff task centre) plus a
`wecom_send_tasks` row in status `creating`. The action runs inside the step's transaction and
never calls WeCom; the next worker pass (`sends.push_queued_sends`) creates the WeCom task for
every member gathered so far, and polling ticks members off as WeCom reports the sends.

Batching: members of one step reaching the same guide on the same business day share one send
and one guide task ("send this to these 12 customers"), keyed
`journey:<journey>:v<version>:<step>:<userid>:<day>` (follow-ups `#2`, `#3`… once the WeCom
task has been created). A retried step finds the member already on that send and changes
nothing: exactly one guide task per member and step.

Which guide: the member's owner guide (staff attribution) when the member is a WeCom contact of
that guide; otherwise the guide the member most recently added on WeCom (a WeCom message can
only come from a guide the customer follows). No such guide → an outcome, not a failure.

Params: `target` = `1:1` | `group` | `moments` (default 1:1), `title` (the guide task's title;
required), `text` (the message; required), `due_in_hours` (default 24). The text is one message
for the whole batch, so it is not personalised per member. 1:1 sends respect the monthly caps
(`WeComSettings`): a member over a cap is recorded as `limited` and left off the task. Group
sends go to the customer groups of that guide the member is in; moments are one post per guide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from siyu.channels.wecom.inbox import WeComSettings
from siyu.channels.wecom.models import (
    SendKind,
    SendStatus,
    WeComFollow,
    WeComGroup,
    WeComGroupMember,
    WeComSendRecipient,
    WeComSendTask,
)
from siyu.channels.wecom.sends import TASK_KIND, _month, _within_budget
from siyu.staff import attribution
from siyu.staff import tasks as staff_tasks

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from siyu.journeys.actions import ActionContext, JourneyAction

TARGETS = {"1:1": SendKind.SINGLE, "group": SendKind.GROUP, "moments": SendKind.MOMENT}
_MAX_FOLLOW_UPS = 50
_staff = sa.table("staff", sa.column("id", sa.BigInteger), sa.column("staff_no", sa.String))


@dataclass(frozen=True)
class _Guide:
    id: int
    userid: str
    external_userid: str


class WeComSend:
    kind = "wecom_send"

    def validate(self, params: Mapping[str, Any]) -> None:
        from siyu.journeys.errors import JourneyError, JourneyErrorCode

        def refuse(message: str) -> None:
            raise JourneyError(JourneyErrorCode.INVALID_DEFINITION, f"action wecom_send: {message}")

        if str(params.get("target", "1:1")) not in TARGETS:
            refuse(f"`target` must be one of {', '.join(TARGETS)}")
        for name in ("title", "text"):
            if not str(params.get(name) or "").strip():
                refuse(f"`{name}` is required")
        hours = params.get("due_in_hours", 24)
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
            refuse("`due_in_hours` must be a positive number")

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        kind = TARGETS[str(params.get("target", "1:1"))]
        session = ctx.db_session
        guide = _guide_of(session, member_id=ctx.member_id)
        if guide is None:
            return "no send: the member is not a WeCom contact of any guide"
        day = ctx.now.astimezone(ctx.tz).date().isoformat()
        base = f"journey:{ctx.journey}:v{ctx.version}:{ctx.step_id}:{guide.userid}:{day}"
        already = _send_holding(session, base, ctx.member_id)
        if already is not None:
            return f"already on wecom send {already}"
        send = _open_send(ctx, base, kind=kind, guide=guide, params=params)
        status = _add_recipients(ctx, send, kind=kind, guide=guide)
        if status != "limited" and send.guide_task_id is not None:
            staff_tasks.add_task_members(
                session, task_id=send.guide_task_id, member_ids=[ctx.member_id]
            )
        return f"wecom send {send.id} ({kind.value}) for {guide.userid}: {status}"


def _guide_of(session: Session, *, member_id: int) -> _Guide | None:
    follows = session.execute(
        sa.select(WeComFollow.userid, WeComFollow.external_userid, _staff.c.id)
        .join(_staff, _staff.c.staff_no == WeComFollow.userid)
        .where(WeComFollow.member_id == member_id, WeComFollow.deleted_at.is_(None))
        .order_by(WeComFollow.added_at.desc(), WeComFollow.id.desc())
    ).all()
    if not follows:
        return None
    owner = attribution.owner_of(session, member_id=member_id)
    chosen = next((f for f in follows if owner is not None and f[2] == owner.guide_id), follows[0])
    return _Guide(id=int(chosen[2]), userid=str(chosen[0]), external_userid=str(chosen[1]))


def _send_holding(session: Session, base: str, member_id: int) -> int | None:
    return session.scalar(
        sa.select(WeComSendTask.id)
        .join(WeComSendRecipient, WeComSendRecipient.send_task_id == WeComSendTask.id)
        .where(
            WeComSendTask.source_key.startswith(base, autoescape=True),
            WeComSendRecipient.member_id == member_id,
        )
        .limit(1)
    )


def _open_send(
    ctx: ActionContext, base: str, *, kind: SendKind, guide: _Guide, params: Mapping[str, Any]
) -> WeComSendTask:
    """Today's send of this step and guide still gathering members (locked), or a new one."""
    session = ctx.db_session
    for n in range(1, _MAX_FOLLOW_UPS + 1):
        key = base if n == 1 else f"{base}#{n}"
        row = session.scalar(
            sa.select(WeComSendTask).where(WeComSendTask.source_key == key).with_for_update()
        )
        if row is None:
            return _new_send(ctx, key, kind=kind, guide=guide, params=params)
        if row.status == SendStatus.CREATING:
            return row
    raise RuntimeError(f"more than {_MAX_FOLLOW_UPS} WeCom sends for {base}")


def _new_send(
    ctx: ActionContext, key: str, *, kind: SendKind, guide: _Guide, params: Mapping[str, Any]
) -> WeComSendTask:
    text = str(params["text"])
    task = staff_tasks.create_guide_task(
        ctx.db_session,
        kind=TASK_KIND[kind],
        title=str(params["title"]),
        body=text,
        guide_id=guide.id,
        member_ids=[],
        due_at=ctx.now + timedelta(hours=float(params.get("due_in_hours", 24))),
        source=staff_tasks.TaskSource.WECOM,
        source_key=f"wecom:{key}",
        payload={"wecom_kind": kind.value, "journey": ctx.journey, "step": ctx.step_id},
        now=ctx.now,
    )
    content: dict[str, Any] = {"text": {"content": text}}
    row = WeComSendTask(
        source_key=key,
        kind=kind,
        userid=guide.userid,
        guide_task_id=task.id,
        content=content,
        status=SendStatus.CREATING,
        created_at=ctx.now,
        reminders=[],
    )
    ctx.db_session.add(row)
    ctx.db_session.flush()
    return row


def _add_recipients(
    ctx: ActionContext, send: WeComSendTask, *, kind: SendKind, guide: _Guide
) -> str:
    """Put the member (1:1), their groups (group) or just the member's row (moments) on it."""
    session, month = ctx.db_session, _month(ctx.now, ctx.tz)
    if kind == SendKind.SINGLE:
        config = WeComSettings()
        limit = min(config.monthly_cap_per_customer, config.our_monthly_budget_per_customer)
        allowed = _within_budget(
            session, members={guide.external_userid: ctx.member_id}, month=month, limit=limit
        )
        status = "pending" if allowed else "limited"
        _recipient(session, send, guide.external_userid, ctx.member_id, month, status)
        return status
    if kind == SendKind.GROUP:
        for chat_id in _groups_of(session, member_id=ctx.member_id, owner=guide.userid):
            _recipient(session, send, chat_id, None, month, "pending")
    # the member's own row records that they were covered (moments, group): never sent to WeCom
    _recipient(session, send, f"member:{ctx.member_id}", ctx.member_id, month, "covered")
    return "pending"


def _recipient(
    session: Session,
    send: WeComSendTask,
    target: str,
    member_id: int | None,
    month: str,
    status: str,
) -> None:
    exists = session.scalar(
        sa.select(WeComSendRecipient.id).where(
            WeComSendRecipient.send_task_id == send.id, WeComSendRecipient.target == target
        )
    )
    if exists is None:
        session.add(
            WeComSendRecipient(
                send_task_id=send.id,
                target=target,
                member_id=member_id,
                month=month,
                status=status,
            )
        )
        session.flush()


def _groups_of(session: Session, *, member_id: int, owner: str) -> list[str]:
    return list(
        session.scalars(
            sa.select(WeComGroupMember.chat_id)
            .join(WeComGroup, WeComGroup.chat_id == WeComGroupMember.chat_id)
            .where(
                WeComGroupMember.member_id == member_id,
                WeComGroupMember.left_at.is_(None),
                WeComGroup.owner == owner,
                WeComGroup.dismissed_at.is_(None),
            )
            .order_by(WeComGroupMember.chat_id)
        )
    )


class MiniProgramNotify:
    """`miniprogram_notify`: a subscription message (coupon expiry, order status) through the
    outbox channel `miniprogram`, only when the member granted a one-time subscription.

    Params: `template_id` (required), `data` (mapping of template keys to Jinja texts rendered
    with `member` and `event`, like send_message), `page` (optional mini-program page).
    """

    kind = "miniprogram_notify"

    def __init__(self) -> None:
        from siyu.channels.base import SandboxedRenderer

        self.renderer = SandboxedRenderer()

    def validate(self, params: Mapping[str, Any]) -> None:
        from siyu.journeys.errors import JourneyError, JourneyErrorCode

        if not str(params.get("template_id") or "").strip():
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION,
                "action miniprogram_notify: `template_id` is required",
            )
        data = params.get("data") or {}
        if not isinstance(data, Mapping) or not data:
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION,
                "action miniprogram_notify: `data` must be a non-empty mapping",
            )
        for value in data.values():
            self.renderer.check(str(value))

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        from siyu.channels.wecom.subscribe_channel import enqueue_subscribe_message
        from siyu.journeys.actions import template_variables

        variables = template_variables(ctx)
        data = {
            str(k): self.renderer.render(str(v), variables) for k, v in dict(params["data"]).items()
        }
        return enqueue_subscribe_message(
            ctx.db_session,
            member_id=ctx.member_id,
            template_id=str(params["template_id"]),
            data=data,
            page=None if params.get("page") is None else str(params["page"]),
            idempotency_key=ctx.idempotency_key,
            now=ctx.now,
            source=f"journey:{ctx.journey}",
        )


def journey_actions() -> list[JourneyAction]:
    return [WeComSend(), MiniProgramNotify()]
