"""Journey action `create_staff_task` (found by `siyu.journeys.plugins`).

A journey step puts the enrolled member on a task of the member's owner guide. Members of one
step reaching the same guide on the same business day share ONE task ("send this to these 12
customers"), keyed `journey:<journey>:v<version>:<step>:<guide>:<day>`; adding a member twice is
a no-op, so a retried step changes nothing. When that day's task is already closed (the guide
finished it), later members go to a follow-up task keyed with `#2`, `#3`…
A member without an owner guide is an outcome of the step ("no owner guide"), not a failure.

Params: `title` (required), `kind` (default send_message), `body`, `due_in_hours` (default 24).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from siyu.staff import attribution, tasks
from siyu.staff.models_guides import GuideTask, GuideTaskMember

if TYPE_CHECKING:
    from siyu.journeys.actions import ActionContext, JourneyAction

_MAX_FOLLOW_UPS = 50


class CreateStaffTask:
    kind = "create_staff_task"

    def validate(self, params: Mapping[str, Any]) -> None:
        from siyu.journeys.errors import JourneyError, JourneyErrorCode

        def refuse(message: str) -> None:
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION, f"action create_staff_task: {message}"
            )

        if not str(params.get("title") or "").strip():
            refuse("`title` is required")
        kind = str(params.get("kind", tasks.TaskKind.SEND_MESSAGE))
        if kind not in {k.value for k in tasks.TaskKind}:
            refuse(f"`kind` {kind!r}: use one of {', '.join(k.value for k in tasks.TaskKind)}")
        hours = params.get("due_in_hours", 24)
        if not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0:
            refuse("`due_in_hours` must be a positive number")

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        owner = attribution.owner_of(ctx.db_session, member_id=ctx.member_id)
        if owner is None or owner.guide_id is None:
            return "no task: the member has no owner guide"
        day = ctx.now.astimezone(ctx.tz).date().isoformat()
        base_key = f"journey:{ctx.journey}:v{ctx.version}:{ctx.step_id}:{owner.guide_id}:{day}"
        already = _task_holding(ctx, base_key)
        if already is not None:
            return f"task {already} for guide {owner.guide_id}"
        key = _open_key(ctx, base_key)
        task = tasks.create_guide_task(
            ctx.db_session,
            kind=str(params.get("kind", tasks.TaskKind.SEND_MESSAGE)),
            title=str(params["title"]),
            body=None if params.get("body") is None else str(params["body"]),
            guide_id=owner.guide_id,
            member_ids=[ctx.member_id],
            due_at=ctx.now + timedelta(hours=float(params.get("due_in_hours", 24))),
            source=tasks.TaskSource.JOURNEY,
            source_key=key,
            payload={"journey": ctx.journey, "step": ctx.step_id},
            now=ctx.now,
        )
        tasks.add_task_members(ctx.db_session, task_id=task.id, member_ids=[ctx.member_id])
        return f"task {task.id} for guide {owner.guide_id}"


def _task_holding(ctx: ActionContext, base_key: str) -> int | None:
    """The task of this step and day the member is already on (a retried step)."""
    return ctx.db_session.scalar(
        select(GuideTask.id)
        .join(GuideTaskMember, GuideTaskMember.task_id == GuideTask.id)
        .where(
            GuideTask.source_key.startswith(base_key, autoescape=True),
            GuideTaskMember.member_id == ctx.member_id,
        )
    )


def _open_key(ctx: ActionContext, base_key: str) -> str:
    """The key of today's task that is still open (or not yet created) for this step and guide."""
    for n in range(1, _MAX_FOLLOW_UPS + 1):
        key = base_key if n == 1 else f"{base_key}#{n}"
        status = ctx.db_session.scalar(select(GuideTask.status).where(GuideTask.source_key == key))
        if status is None or status == tasks.TaskStatus.OPEN:
            return key
    return f"{base_key}#{_MAX_FOLLOW_UPS}"


def journey_actions() -> list[JourneyAction]:
    return [CreateStaffTask()]
