"""`siyu import members|orders|events|stores|staff PATH [--json] [--now …]` (DESIGN §4.1, §4.6).

The progress bar and the summary go to stderr, the JSON result to stdout. After members,
orders or events are imported (unless --no-sync) the warehouse is synced, rule tags are
recomputed and the touched profiles refreshed, so reports, segments and the 360 page see them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from siyu.bootstrap import Siyu
from siyu.cli.context import clock_at, fail, state, stderr
from siyu.ingest import directory
from siyu.ingest import service as ingest_service
from siyu.ingest.errors import IngestError
from siyu.ingest.readers import count_rows

import_app = typer.Typer(
    help="Import members, orders, events, stores or staff (CSV, NDJSON, Parquet)."
)
PathArg = Annotated[Path, typer.Argument(help="A .csv, .ndjson/.jsonl or .parquet file.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Now = Annotated[str | None, typer.Option("--now", help="Import as of this instant (ISO 8601).")]
Sync = Annotated[bool, typer.Option("--sync/--no-sync", help="Sync the warehouse afterwards.")]


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")


def _run(
    ctx: typer.Context, kind: str, path: Path, as_json: bool, now: str | None, sync: bool
) -> None:
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        total = count_rows(path)
        with _progress() as progress:
            task = progress.add_task(f"import {kind}", total=total)
            result = ingest_service.import_file(
                session_factory=siyu.session_factory,
                kind=kind,
                path=path,
                now=siyu.clock.now(),
                tz=siyu.settings.tz,
                max_member_nos=siyu.settings.identity_max_member_nos_per_value,
                batch_size=siyu.settings.import_batch_size,
                on_progress=lambda n: progress.advance(task, n),
            )
    except IngestError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    if sync:
        _after_import(siyu)
    _report(result.as_json(), as_json)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    )


def _after_import(siyu: Siyu) -> None:
    """Sync the warehouse, recompute rule tags and refresh the profiles the import touched."""
    from siyu.profiles.service import refresh_profiles
    from siyu.staff.jobs import attribute_new_members
    from siyu.tags import service as tags_service
    from siyu.warehouse import sync

    attribute_new_members(session_factory=siyu.session_factory, now=siyu.clock.now())  # owners
    result = sync.sync_all(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
    )
    stderr.print(
        f"warehouse synced: {result.order_lines:,} order lines, {result.events:,} events, "
        f"{result.members:,} members"
    )
    # Rule tags sync again before and after they apply their diff, so the warehouse ends current.
    tags = tags_service.recompute_rule_tags(
        session_factory=siyu.session_factory,
        warehouse=siyu.warehouse,
        clock=siyu.clock,
        tz=siyu.settings.tz,
    )
    if tags.tags:
        stderr.print("rule tags: " + ", ".join(f"{t.tag} {t.members:,}" for t in tags.tags))
    profiles = refresh_profiles(warehouse=siyu.warehouse)
    stderr.print(f"profiles refreshed: {profiles.members:,} members")


def _report(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    stderr.print(
        f"accepted {payload['accepted']:,} · rejected {payload['rejected']:,} · "
        f"duplicates {payload['duplicates']:,} · warnings {payload.get('warnings', 0):,}"
    )
    if payload.get("rejected_file"):
        stderr.print(f"rejected rows and reasons: {payload['rejected_file']}")


@import_app.command("members")
def members(
    ctx: typer.Context, path: PathArg, as_json: AsJson = False, now: Now = None, sync: Sync = True
) -> None:
    """Members (member_no, phone, unionid, openid, external_userid, name, gender, …)."""
    _run(ctx, "members", path, as_json, now, sync)


@import_app.command("orders")
def orders(
    ctx: typer.Context, path: PathArg, as_json: AsJson = False, now: Now = None, sync: Sync = True
) -> None:
    """Order lines (order_id, line_no, member_no, phone, unionid, paid_at, amount, status, …)."""
    _run(ctx, "orders", path, as_json, now, sync)


@import_app.command("events")
def events(
    ctx: typer.Context, path: PathArg, as_json: AsJson = False, now: Now = None, sync: Sync = True
) -> None:
    """Events (event_id, type, occurred_at, identities{…}, properties{…})."""
    _run(ctx, "events", path, as_json, now, sync)


@import_app.command("stores")
def stores(ctx: typer.Context, path: PathArg, as_json: AsJson = False, now: Now = None) -> None:
    """Stores (store_code, name, city, region, kind)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        result = directory.import_stores(
            session_factory=siyu.session_factory, path=path, now=siyu.clock.now()
        )
    except IngestError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    _report(result.as_json(), as_json)


@import_app.command("staff")
def staff(ctx: typer.Context, path: PathArg, as_json: AsJson = False, now: Now = None) -> None:
    """Staff (staff_no, name, role, store_code, region); import stores first."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        result = directory.import_staff(
            session_factory=siyu.session_factory, path=path, now=siyu.clock.now()
        )
    except IngestError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    _report(result.as_json(), as_json)
