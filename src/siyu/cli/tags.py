"""`siyu tags …`: tag groups, tags (manual or rule-based), tagging members, rule recompute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siyu.cli.context import clock_at, fail, state
from siyu.tags import service as tags_service
from siyu.tags.errors import TagError

tags_app = typer.Typer(help="Tag groups, manual and rule-based tags (issue #3).")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Actor = Annotated[
    str, typer.Option("--actor", help="Who does it, for the audit log (e.g. guide:xiao-li).")
]


def register(app: typer.Typer) -> None:
    app.add_typer(tags_app, name="tags")


def _emit(payload: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        typer.echo(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        Console().print(table)


def _call(ctx: typer.Context, action: Any, now: str | None = None, **kwargs: Any) -> Any:
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        return action(siyu, **kwargs)
    except TagError as error:
        fail(f"{error.code.value}: {error.message}")


@tags_app.command("group-create")
def group_create(
    ctx: typer.Context,
    name: str,
    exclusive: Annotated[bool, typer.Option(help="A member holds at most one tag of it.")] = False,
    actor: Actor = "operator:cli",
) -> None:
    """Create a tag group (mutually exclusive with --exclusive, else multi-valued)."""
    view = _call(
        ctx,
        lambda s, **k: tags_service.create_group(
            session_factory=s.session_factory, clock=s.clock, **k
        ),
        name=name,
        exclusive=exclusive,
        actor=actor,
    )
    _emit(view.model_dump(), True)


@tags_app.command("define")
def define(
    ctx: typer.Context,
    tag: Annotated[str, typer.Argument(help="group:name")],
    rule: Annotated[
        str | None,
        typer.Option(help="Segment-DSL condition (JSON text, or @file.json): an auto tag."),
    ] = None,
    actor: Actor = "operator:cli",
) -> None:
    """Define a tag in an existing group; with --rule it is recomputed from the DSL."""
    parsed = None
    if rule is not None:
        text = Path(rule[1:]).read_text(encoding="utf-8") if rule.startswith("@") else rule
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            fail(f"--rule: not JSON ({error})")
    view = _call(
        ctx,
        lambda s, **k: tags_service.define_tag(
            session_factory=s.session_factory, clock=s.clock, **k
        ),
        tag=tag,
        rule=parsed,
        actor=actor,
    )
    _emit(view.model_dump(), True)


@tags_app.command("list")
def list_tags(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every tag with its group kind, rule and member count."""
    views = _call(ctx, lambda s: tags_service.list_tags(session_factory=s.session_factory))
    table = Table("tag", "exclusive group", "rule", "members")
    for v in views:
        rule = json.dumps(v.rule, ensure_ascii=False) if v.rule else "—"
        table.add_row(v.tag, "yes" if v.exclusive else "no", rule, str(v.members))
    _emit([v.model_dump() for v in views], as_json, table)


@tags_app.command("add")
def add(ctx: typer.Context, member_id: int, tag: str, actor: Actor = "operator:cli") -> None:
    """Put a manual tag on a member (replaces the other tag of an exclusive group)."""
    change = _call(
        ctx,
        lambda s, **k: tags_service.tag_member(
            session_factory=s.session_factory, clock=s.clock, **k
        ),
        member_id=member_id,
        tag=tag,
        actor=actor,
    )
    _emit(change.model_dump(), True)


@tags_app.command("remove")
def remove(ctx: typer.Context, member_id: int, tag: str, actor: Actor = "operator:cli") -> None:
    """Remove a manual tag from a member."""
    change = _call(
        ctx,
        lambda s, **k: tags_service.untag_member(
            session_factory=s.session_factory, clock=s.clock, **k
        ),
        member_id=member_id,
        tag=tag,
        actor=actor,
    )
    _emit(change.model_dump(), True)


@tags_app.command("show")
def show(ctx: typer.Context, member_id: int, as_json: AsJson = False) -> None:
    """A member's tags with their source and who set them."""
    views = _call(
        ctx,
        lambda s, **k: tags_service.member_tags(session_factory=s.session_factory, **k),
        member_id=member_id,
    )
    table = Table("tag", "source", "by", "at")
    for v in views:
        table.add_row(v.tag, v.source, v.tagged_by or "", v.tagged_at.isoformat())
    _emit([v.model_dump(mode="json") for v in views], as_json, table)


@tags_app.command("recompute")
def recompute(
    ctx: typer.Context,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only these rule tags.")] = None,
    now: Annotated[str | None, typer.Option("--now", help="Evaluate as of this instant.")] = None,
    as_json: AsJson = False,
) -> None:
    """Re-evaluate rule tags against the warehouse (syncs first and after)."""
    result = _call(
        ctx,
        lambda s, **k: tags_service.recompute_rule_tags(
            session_factory=s.session_factory,
            warehouse=s.warehouse,
            clock=s.clock,
            tz=s.settings.tz,
            **k,
        ),
        now=now,
        only=tag or None,
    )
    table = Table("tag", "members", "added", "removed")
    for o in result.tags:
        table.add_row(o.tag, str(o.members), str(o.added), str(o.removed))
    _emit(result.model_dump(), as_json, table)
