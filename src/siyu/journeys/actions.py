"""Journey actions: the `JourneyAction` interface, the registry, and the built-in actions.

An action runs inside the step's transaction and must only write to the operational store
(the outbox for anything that leaves the building), so the action's effect and the step's
completion commit together. Each call carries the step's idempotency key
(journey, version, step, enrollment, occurrence) for effects that are keyed elsewhere.
Built in: send_message (sandbox/sms/email through the outbox and its delivery policy),
call_webhook (HMAC-signed by the webhook channel), add_tag, remove_tag.

Other domains plug in their own kinds (issue_coupon / grant_points from loyalty,
create_staff_task from staff) WITHOUT editing this package: implement `JourneyAction` and expose
`journey_actions() -> list[JourneyAction]` from `siyu.loyalty.journey_actions` or
`siyu.staff.journey_actions` (the module names `plugins.PROVIDER_MODULES` looks for; see the
`plugins` docstring for the contract: write through ctx.db_session, never commit, key every
effect by ctx.idempotency_key). Tests may also `ActionRegistry.register(...)` directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from siyu.delivery import outbox
from siyu.journeys import sources
from siyu.journeys.errors import JourneyError, JourneyErrorCode

MESSAGE_CHANNELS = ("sandbox", "sms", "email")
_TAG = re.compile(r"^[^:]{1,64}:[^:]{1,64}$")


@dataclass(frozen=True)
class ActionContext:
    db_session: Session
    now: datetime
    tz: ZoneInfo
    journey: str
    version: int
    step_id: str
    enrollment_id: int
    member_id: int
    idempotency_key: str
    context: Mapping[str, object]
    # The member's template fields when the engine prefetched them for its batch (else queried).
    member: Mapping[str, object] | None = None
    # Where the engine collects the batch's outbox rows (one INSERT at the end); None = add now.
    outbox_rows: list[dict[str, object]] | None = None


class JourneyAction(Protocol):
    kind: str

    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise JourneyError naming the bad parameter; called when a journey is applied."""

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        """Do the action in ctx.db_session (never commit); return a short outcome."""


class TemplateRenderer(Protocol):
    """Renders message templates; the composition root injects a sandboxed Jinja2 one."""

    def check(self, template: str) -> None: ...

    def render(self, template: str, variables: Mapping[str, object]) -> str: ...


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[str, JourneyAction] = {}

    def register(self, action: JourneyAction) -> None:
        self._actions[action.kind] = action

    def get(self, kind: str) -> JourneyAction:
        if kind not in self._actions:
            raise JourneyError(
                JourneyErrorCode.UNKNOWN_ACTION,
                f"unknown action {kind!r}; available: {', '.join(self.kinds())}",
            )
        return self._actions[kind]

    def kinds(self) -> list[str]:
        return sorted(self._actions)


def _require(params: Mapping[str, Any], key: str, kind: str) -> Any:
    if not params.get(key):
        raise JourneyError(
            JourneyErrorCode.INVALID_DEFINITION, f"action {kind}: `{key}` is required"
        )
    return params[key]


_MEMBER_FIELDS = ("id", "name", "gender", "birthday", "registered_at", "store_code", "channel")


def member_fields(db_session: Session, member_id: int) -> dict[str, object]:
    """The member fields a template may use: {{ member.name }}, {{ member.store_code }}…"""
    return members_fields(db_session=db_session, member_ids={member_id}).get(member_id, {})


def members_fields(*, db_session: Session, member_ids: set[int]) -> dict[int, dict[str, object]]:
    """`member_fields` for many members in one query (the engine loads a batch's at once)."""
    m = sources.members
    rows = db_session.execute(
        sa.select(*(m.c[name] for name in _MEMBER_FIELDS)).where(m.c.id.in_(sorted(member_ids)))
    )
    return {int(row[0]): dict(zip(_MEMBER_FIELDS, row, strict=True)) for row in rows}


class SendMessage:
    """Render the template for the member and put the message in the outbox."""

    kind = "send_message"

    def __init__(self, renderer: TemplateRenderer) -> None:
        self.renderer = renderer

    def validate(self, params: Mapping[str, Any]) -> None:
        channel = params.get("channel", "sandbox")
        if channel not in MESSAGE_CHANNELS:
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION,
                f"send_message: channel {channel!r} is not one of {', '.join(MESSAGE_CHANNELS)}"
                " (WeCom is reached through create_staff_task)",
            )
        self.renderer.check(str(_require(params, "body", self.kind)))
        self.renderer.check(str(params.get("subject", "")))

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        variables = template_variables(ctx)
        channel = str(params.get("channel", "sandbox"))
        queue(
            ctx,
            channel=channel,
            member_id=ctx.member_id,
            subject=self._render(str(params.get("subject") or ""), variables),
            body=self._render(str(params["body"]), variables),
            payload={k: v for k, v in params.items() if k not in ("body", "subject", "channel")},
        )
        return f"queued on {channel}"

    def _render(self, template: str, variables: Mapping[str, object]) -> str:
        # Why: a text with no Jinja delimiter ({{ }}, {% %}, {# #}) renders to itself; most
        # subjects are empty and many bodies have no member field, so skip the per-member render.
        if "{" not in template:
            return template
        return self.renderer.render(template, variables)


def queue(
    ctx: ActionContext,
    *,
    channel: str,
    member_id: int | None,
    body: str,
    subject: str = "",
    recipient: str | None = None,
    payload: dict[str, object] | None = None,
) -> None:
    """Put a message in the outbox under the step's idempotency key (batched by the engine)."""
    row = outbox.prepare(
        db_session=ctx.db_session,
        now=ctx.now,
        idempotency_key=ctx.idempotency_key,
        channel=channel,
        member_id=member_id,
        subject=subject,
        body=body,
        recipient=recipient,
        payload=payload,
        source=f"journey:{ctx.journey}:v{ctx.version}:{ctx.step_id}",
        resolve_recipient=ctx.outbox_rows is None,  # batched: the engine fills them at once
    )
    if ctx.outbox_rows is not None:
        ctx.outbox_rows.append(row)
    else:
        outbox.insert_rows(db_session=ctx.db_session, rows=[row])


def template_variables(ctx: ActionContext) -> dict[str, object]:
    return {
        "member": dict(ctx.member)
        if ctx.member is not None
        else member_fields(ctx.db_session, ctx.member_id),
        "event": dict(ctx.context),
        "journey": ctx.journey,
        "today": ctx.now.astimezone(ctx.tz).date(),
    }


class CallWebhook:
    """POST a signed JSON body to `url` through the outbox (retried, dead-lettered, keyed).

    A webhook is a system integration, not contact with the member, so it is not subject to
    the member's consent or frequency caps; the member id travels in the body.
    """

    kind = "call_webhook"

    def validate(self, params: Mapping[str, Any]) -> None:
        url = str(_require(params, "url", self.kind))
        if not url.startswith(("http://", "https://")):
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION, f"call_webhook: url {url!r} is not http(s)"
            )

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        body = {
            "journey": ctx.journey,
            "version": ctx.version,
            "step": ctx.step_id,
            "member_id": ctx.member_id,
            "idempotency_key": ctx.idempotency_key,
            "data": params.get("data", {}),
        }
        queue(ctx, channel="webhook", member_id=None, recipient=str(params["url"]), body="",
              payload=body)  # fmt: skip
        return "webhook queued"


class ChangeTag:
    """Add or remove a `group:name` tag; the group and tag are created on first use."""

    def __init__(self, *, add: bool) -> None:
        self.add = add
        self.kind = "add_tag" if add else "remove_tag"

    def validate(self, params: Mapping[str, Any]) -> None:
        tag = str(_require(params, "tag", self.kind))
        if not _TAG.match(tag):
            raise JourneyError(
                JourneyErrorCode.INVALID_DEFINITION, f"{self.kind}: tag {tag!r} is not group:name"
            )

    def execute(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        db, mt = ctx.db_session, sources.member_tags
        tag_id = _tag_id(db, str(params["tag"]), ctx.now)
        link = sa.and_(mt.c.member_id == ctx.member_id, mt.c.tag_id == tag_id)
        present = db.execute(sa.select(mt.c.member_id).where(link)).first() is not None
        if self.add and not present:
            db.execute(
                sa.insert(mt).values(
                    member_id=ctx.member_id,
                    tag_id=tag_id,
                    source="rule",
                    tagged_by=f"journey:{ctx.journey}",
                    tagged_at=ctx.now,
                )
            )
        if not self.add and present:
            db.execute(sa.delete(mt).where(link))
        return f"{'added' if self.add else 'removed'} {params['tag']}"


def _tag_id(db: Session, tag: str, now: datetime) -> int:
    group_name, _, name = tag.partition(":")
    g, t = sources.tag_groups, sources.tags
    group_id = db.scalar(sa.select(g.c.id).where(g.c.name == group_name))
    if group_id is None:
        group_id = db.execute(
            sa.insert(g).values(name=group_name, exclusive=False, created_at=now).returning(g.c.id)
        ).scalar_one()
    tag_id = db.scalar(sa.select(t.c.id).where(t.c.group_id == group_id, t.c.name == name))
    if tag_id is None:
        tag_id = db.execute(
            sa.insert(t).values(group_id=group_id, name=name, created_at=now).returning(t.c.id)
        ).scalar_one()
    return int(tag_id)


def default_registry(*, renderer: TemplateRenderer) -> ActionRegistry:
    """The built-in actions plus those other domains expose (see `plugins.register_available`)."""
    from siyu.journeys import plugins

    registry = ActionRegistry()
    registry.register(SendMessage(renderer))
    registry.register(CallWebhook())
    registry.register(ChangeTag(add=True))
    registry.register(ChangeTag(add=False))
    plugins.register_available(registry)
    return registry
