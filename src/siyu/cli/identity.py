"""`siyu identity rebuild` · `siyu identity polluted [--json]` (DESIGN §4.3)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siyu.cli.context import clock_at, state, stderr
from siyu.identity import service as identity_service

identity_app = typer.Typer(help="OneID: full rebuild and polluted values.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


@identity_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    as_json: AsJson = False,
    now: Annotated[str | None, typer.Option("--now", help="Stamp merges at this instant.")] = None,
) -> None:
    """Recount pollution and regroup every record into members from scratch."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    result = identity_service.rebuild_identities(
        session_factory=siyu.session_factory,
        now=siyu.clock.now(),
        max_member_nos=siyu.settings.identity_max_member_nos_per_value,
    )
    if as_json:
        typer.echo(json.dumps(result))
    else:
        stderr.print(
            f"rebuilt {result['records']:,} records: {result['merges']:,} merges, "
            f"{result['splits']:,} splits, {result['polluted']:,} polluted values"
        )
    if result["splits"]:
        # The warehouse follows merges (member_merges) but copies order lines once, so a split
        # only reaches reports and segments when the warehouse is rebuilt from scratch.
        stderr.print(
            f"[yellow]{result['splits']:,} members were split: the warehouse keeps their "
            "order lines and events under the pre-split member until it is rebuilt from "
            "scratch (the incremental sync follows merges, not splits).[/]"
        )


@identity_app.command("polluted")
def polluted(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Values shared by too many member_nos to be trusted for merging."""
    siyu = state(ctx).siyu()
    rows = identity_service.list_polluted(session_factory=siyu.session_factory)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(f"{row['type']}:{row['value']}\t{row['member_nos']} member_nos")
    if not rows:
        typer.echo("no polluted values")
