"""`siyu staff leave|assign|attribute|rules|owner|tasks|expire-tasks`: people and attribution.

The CLI runs as the machine's operator (`Viewer.system()`, role hq).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siyu.access.scope import Viewer
from siyu.cli.context import clock_at, fail, state
from siyu.db import transaction
from siyu.identity import service as identity_service
from siyu.identity.errors import IdentityError
from siyu.staff import attribution, tasks
from siyu.staff.errors import StaffError
from siyu.staff.models import Staff

staff_app = typer.Typer(help="Staff leaving and joining, member attribution, guide tasks.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Now = Annotated[str | None, typer.Option("--now", help="Act as of this ISO instant.")]


def register(app: typer.Typer) -> None:
    app.add_typer(staff_app, name="staff")


def _emit(data: object, as_json: bool) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str) if as_json else str(data))


@staff_app.command("leave")
def leave(
    ctx: typer.Context,
    staff_no: Annotated[str, typer.Argument(help="The leaving guide's staff_no.")],
    to: Annotated[str | None, typer.Option("--to", help="Successor staff_no.")] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Spread members over the store's guides.")
    ] = False,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Deactivate a guide and hand their members to a successor (with history)."""
    if (to is None) == (not auto):
        fail("give exactly one of --to STAFF_NO or --auto")
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        result = attribution.staff_leave(
            session_factory=siyu.session_factory, clock=siyu.clock, staff_no=staff_no,
            to_staff_no=to, actor="cli",
        )  # fmt: skip
    except StaffError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    _emit(result, as_json)


@staff_app.command("assign")
def assign(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="Member phone, member_no, unionid…")],
    staff_no: Annotated[str, typer.Argument(help="The guide who will own the member.")],
    as_json: AsJson = False,
) -> None:
    """Manually assign a member to a guide (never overridden by the rules)."""
    siyu = state(ctx).siyu()
    try:
        member_id = identity_service.find_member_by_identity(
            session_factory=siyu.session_factory, identity=identity
        )
        owner = attribution.assign_member(
            session_factory=siyu.session_factory, clock=siyu.clock, member_id=member_id,
            staff_no=staff_no, actor="cli",
        )  # fmt: skip
    except (StaffError, IdentityError) as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    _emit(owner.__dict__, as_json)


@staff_app.command("attribute")
def attribute(ctx: typer.Context, now: Now = None, as_json: AsJson = False) -> None:
    """Apply the attribution rules to every member; prints how many each rule (re)assigned."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    counts = attribution.attribute_members(
        session_factory=siyu.session_factory, clock=siyu.clock, actor="cli"
    )
    _emit(counts, as_json)


@staff_app.command("rules")
def rules(
    ctx: typer.Context,
    set_to: Annotated[
        str | None,
        typer.Option("--set", help="Comma-separated order, e.g. channel_code,registration_store"),
    ] = None,
) -> None:
    """Show or set the attribution rule order."""
    siyu = state(ctx).siyu()
    if set_to is None:
        with siyu.session_factory() as session:
            typer.echo(",".join(attribution.get_rules(session)))
        return
    try:
        chosen = attribution.set_rules(
            session_factory=siyu.session_factory, clock=siyu.clock,
            rules=[r.strip() for r in set_to.split(",") if r.strip()], actor="cli",
        )  # fmt: skip
    except StaffError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    typer.echo(",".join(chosen))


@staff_app.command("owner")
def owner(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="Member phone, member_no, unionid…")],
    as_json: AsJson = False,
) -> None:
    """A member's owner guide/store and the history of changes."""
    siyu = state(ctx).siyu()
    try:
        member_id = identity_service.find_member_by_identity(
            session_factory=siyu.session_factory, identity=identity
        )
    except IdentityError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    with siyu.session_factory() as session:
        current = attribution.owner_of(session, member_id=member_id)
        history = attribution.owner_history(session, member_id=member_id)
    _emit({"owner": None if current is None else current.__dict__, "history": history}, as_json)


@staff_app.command("tasks")
def list_tasks(
    ctx: typer.Context,
    staff_no: Annotated[str, typer.Argument(help="The guide's staff_no.")],
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """A guide's tasks for today (open ones due by tonight, and those done today)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    with siyu.session_factory() as session:
        from sqlalchemy import select

        guide_id = session.scalar(select(Staff.id).where(Staff.staff_no == staff_no))
        if guide_id is None:
            fail(f"unknown_staff: no staff member {staff_no!r}", code=1)
            return
        found = tasks.list_tasks_for_guide(
            session, guide_id=guide_id, viewer=Viewer.system("cli"), now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )  # fmt: skip
    rows = [
        {"id": t.id, "kind": t.kind.value, "title": t.title, "status": t.status.value,
         "due_at": t.due_at.isoformat(), "members": len(t.members), "done": t.members_done}
        for t in found
    ]  # fmt: skip
    if as_json:
        _emit(rows, True)
        return
    for r in rows:
        progress = f"{r['done']}/{r['members']}"
        typer.echo(f"#{r['id']} [{r['status']}] {r['title']} ({progress}) due {r['due_at']}")


@staff_app.command("expire-tasks")
def expire_tasks(ctx: typer.Context, now: Now = None) -> None:
    """Expire open tasks past their due instant (the worker does this too)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    with transaction(siyu.session_factory) as session:
        expired = tasks.expire_overdue(session, now=siyu.clock.now())
    typer.echo(f"{expired} tasks expired")
