"""`siyu segment …`: preview (count, sample), export, saved segments, snapshots and their diffs.

A DSL argument is inline JSON or `@file.json`. Before evaluating, the warehouse is brought up
to date with the operational store (`--no-sync` skips it when you know it is current).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siyu.bootstrap import Siyu
from siyu.cli.context import clock_at, fail, state, stderr
from siyu.db import transaction
from siyu.privacy.exports import audit_export
from siyu.segments import refresh as segments_refresh
from siyu.segments import service as segments_service
from siyu.segments.errors import SegmentDefinitionError, SegmentError
from siyu.segments.schemas import ExportFormat, Schedule
from siyu.warehouse.clickhouse import ClickHouseWarehouse, export_to_clickhouse
from siyu.warehouse.sync import sync_all

segment_app = typer.Typer(help="Segments (圈人): preview, save, snapshot, diff, export (issue #4).")
Dsl = Annotated[str, typer.Option("--json", help="Segment DSL: inline JSON or @file.json.")]
Now = Annotated[
    str | None, typer.Option("--now", help="Evaluation instant (ISO 8601; default: now).")
]
Sync = Annotated[
    bool, typer.Option("--sync/--no-sync", help="Bring the warehouse up to date first.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


warehouse_app = typer.Typer(help="The warehouse segments run on (DuckDB, or ClickHouse: ADR 0003).")


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment")
    app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command("export-to-clickhouse")
def export_to_clickhouse_command(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help="clickhouse://… or chdb://PATH (default SIYU_WAREHOUSE_URL)."),
    ] = None,
    sync: Sync = True,
    as_json: AsJson = False,
) -> None:
    """Sync DuckDB, then replace every warehouse table in ClickHouse by DuckDB's rows."""
    siyu = _siyu(ctx, None, sync)
    target_url = url or siyu.settings.clickhouse_url
    if target_url is None:
        fail(
            "no ClickHouse warehouse: pass --url or set SIYU_WAREHOUSE_URL (clickhouse:// or chdb://)"
        )
        return
    target = siyu.segment_warehouse if url is None else ClickHouseWarehouse.from_url(target_url)
    assert isinstance(target, ClickHouseWarehouse)
    scratch = Path(tempfile.mkdtemp(prefix="siyu-export-"))
    try:
        copied = export_to_clickhouse(source=siyu.warehouse, target=target, scratch=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if target is not siyu.segment_warehouse:
            target.close()
    # a copy of every warehouse table (orders, events, member features) leaves this store
    audit_export(
        session_factory=siyu.session_factory, now=siyu.clock.now(), actor="cli",
        kind="warehouse", subject=target_url.split("@")[-1], detail={"rows": copied},
    )  # fmt: skip
    if as_json:
        _echo(copied)
        return
    for table, rows in copied.items():
        typer.echo(f"{table}: {rows:,} rows")


def read_dsl(text: str) -> dict[str, Any]:
    """Inline JSON or `@path`; anything but a JSON object is refused with the reason."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            fail(f"--json: no such file {path}")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--json: not valid JSON ({error})")
    if not isinstance(data, dict):
        fail("--json: the segment definition must be a JSON object")
    return data  # type: ignore[no-any-return]


def _siyu(ctx: typer.Context, now: str | None, sync: bool) -> Siyu:
    siyu = state(ctx).siyu(clock=clock_at(now))
    if sync:
        sync_all(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
        )
    return siyu


def _fail(error: SegmentError) -> None:
    if isinstance(error, SegmentDefinitionError):
        fail(f"{error.code.value}:\n  " + "\n  ".join(error.problems))
    fail(f"{error.code.value}: {error}")


def _echo(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, default=str))


@segment_app.command("count")
def count(ctx: typer.Context, dsl: Dsl, now: Now = None, sync: Sync = True) -> None:
    """How many members the segment holds now: {"count": n}."""
    siyu = _siyu(ctx, now, sync)
    try:
        with siyu.session_factory() as db:
            number = segments_service.count_members(
                warehouse=siyu.segment_warehouse,
                definition=read_dsl(dsl),
                now=siyu.clock.now(),
                session=db,
                timezone=siyu.settings.tz,
            )
    except SegmentError as error:
        _fail(error)
    _echo({"count": number})


@segment_app.command("sample")
def sample(
    ctx: typer.Context,
    dsl: Dsl,
    size: Annotated[int, typer.Option("--size", min=1, max=100)] = 10,
    now: Now = None,
    sync: Sync = True,
) -> None:
    """The count and a masked sample of members (names masked, no contacts)."""
    siyu = _siyu(ctx, now, sync)
    try:
        with siyu.session_factory() as db:
            preview = segments_service.preview_segment(
                warehouse=siyu.segment_warehouse,
                definition=read_dsl(dsl),
                now=siyu.clock.now(),
                session=db,
                timezone=siyu.settings.tz,
                sample_size=size,
            )
    except SegmentError as error:
        _fail(error)
    _echo(
        {
            "count": preview.count,
            "sample": [vars(member) for member in preview.sample],
            "elapsed_ms": preview.elapsed_ms,
            "answered_by": preview.answered_by,
        }
    )


@segment_app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    dsl: Annotated[
        str | None, typer.Option("--json", help="Segment DSL: inline JSON or @file.json.")
    ] = None,
    name: Annotated[str | None, typer.Option("--segment", help="A saved segment.")] = None,
    export_format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.CSV,
    now: Now = None,
    sync: Sync = True,
) -> None:
    """Write the segment's members (id, gender, store, channel, registered_at) to CSV/Parquet."""
    if (dsl is None) == (name is None):
        fail("give exactly one of --json DSL or --segment NAME")
    definition = read_dsl(dsl) if dsl is not None else {"segment": name}
    siyu = _siyu(ctx, now, sync)
    try:
        with siyu.session_factory() as db:
            rows = segments_service.export_segment(
                warehouse=siyu.segment_warehouse,
                definition=definition,
                now=siyu.clock.now(),
                out=out,
                export_format=export_format,
                session=db,
                timezone=siyu.settings.tz,
            )
    except SegmentError as error:
        _fail(error)
    audit_export(
        session_factory=siyu.session_factory, now=siyu.clock.now(), actor="cli", kind="segment",
        subject=name or "dsl", detail={"rows": rows, "out": str(out)},
    )  # fmt: skip
    _echo({"rows": rows, "out": str(out), "format": export_format.value})


@segment_app.command("save")
def save(
    ctx: typer.Context,
    name: str,
    dsl: Dsl,
    description: Annotated[str | None, typer.Option("--description")] = None,
    schedule: Annotated[Schedule | None, typer.Option("--schedule")] = None,
    owner: Annotated[str, typer.Option("--owner", help="Who owns it (audit log).")] = "cli",
    now: Now = None,
) -> None:
    """Create the segment NAME, or replace its definition (and given fields)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        with transaction(siyu.session_factory) as db:
            saved = segments_service.save_segment(
                db_session=db,
                name=name,
                definition=read_dsl(dsl),
                now=siyu.clock.now(),
                owner=owner,
                description=description,
                schedule=schedule,
            )
    except SegmentError as error:
        _fail(error)
    _echo(vars(saved))


@segment_app.command("list")
def list_segments(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Saved segments with their latest count."""
    siyu = state(ctx).siyu()
    with siyu.session_factory() as db:
        segments = segments_service.get_all(db_session=db)
    if as_json:
        _echo([vars(segment) for segment in segments])
        return
    table = Table("name", "schedule", "owner", "count", "refreshed at", "description")
    for s in segments:
        count_text = "—" if s.last_count is None else f"{s.last_count:,}"
        refreshed = "never" if s.last_refreshed_at is None else str(s.last_refreshed_at)
        table.add_row(s.name, s.schedule, s.owner, count_text, refreshed, s.description)
    Console().print(table)


@segment_app.command("show")
def show(ctx: typer.Context, name: str, as_json: AsJson = False) -> None:
    """A saved segment: definition, owner, schedule, and its count history."""
    siyu = state(ctx).siyu()
    try:
        with siyu.session_factory() as db:
            segment = segments_service.get(db_session=db, name=name)
            history = segments_refresh.count_history(db_session=db, name=name)
    except SegmentError as error:
        _fail(error)
    payload = vars(segment) | {"history": [vars(point) for point in history]}
    if as_json:
        _echo(payload)
        return
    Console().print_json(json.dumps(segment.definition, ensure_ascii=False))
    table = Table("taken at", "count", "entered", "exited", "ms", title=f"{name} — history")
    for p in history:
        table.add_row(
            str(p.taken_at),
            f"{p.member_count:,}",
            f"{p.entered_count:,}",
            f"{p.exited_count:,}",
            str(p.elapsed_ms),
        )
    Console().print(table)


@segment_app.command("refresh")
def refresh(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="One segment (default: every due one).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Snapshot even if not due.")] = False,
    now: Now = None,
    sync: Sync = True,
) -> None:
    """Take snapshots: of NAME (when due, or --force), or of every segment that is due."""
    siyu = _siyu(ctx, now, sync)
    try:
        if name is None:
            results = segments_refresh.refresh_due_segments(
                session_factory=siyu.session_factory,
                warehouse=siyu.segment_warehouse,
                now=siyu.clock.now(),
                timezone=siyu.settings.tz,
            )
        else:
            results = [
                segments_refresh.refresh_segment(
                    session_factory=siyu.session_factory,
                    warehouse=siyu.segment_warehouse,
                    name=name,
                    now=siyu.clock.now(),
                    force=force,
                    timezone=siyu.settings.tz,
                )
            ]
    except SegmentError as error:
        _fail(error)
    for r in results:
        stderr.print(f"{r.segment}: {r.reason}" + (f" → {r.member_count:,}" if r.refreshed else ""))
    _echo(
        [
            {
                "segment": r.segment,
                "refreshed": r.refreshed,
                "reason": r.reason,
                "taken_at": r.taken_at,
                "count": r.member_count,
                "entered": len(r.entered),
                "exited": len(r.exited),
                "elapsed_ms": r.elapsed_ms,
            }
            for r in results
        ]
    )


@segment_app.command("diff")
def diff(
    ctx: typer.Context,
    name: str,
    at: Annotated[str | None, typer.Option("--at", help="The snapshot at or before.")] = None,
) -> None:
    """Who entered and who left at the latest snapshot (member ids, JSON)."""
    siyu = state(ctx).siyu()
    instant = clock_at(at)
    try:
        with siyu.session_factory() as db:
            change = segments_refresh.segment_diff(
                db_session=db, name=name, at=instant.now() if instant else None
            )
    except SegmentError as error:
        _fail(error)
    _echo(vars(change))


@segment_app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    actor: Annotated[str, typer.Option("--actor")] = "cli",
) -> None:
    """Delete a saved segment and its snapshots (refused while another segment uses it)."""
    siyu = state(ctx).siyu()
    try:
        with transaction(siyu.session_factory) as db:
            segments_service.delete_segment(
                db_session=db, name=name, now=siyu.clock.now(), actor=actor
            )
    except SegmentError as error:
        _fail(error)
    _echo({"deleted": name})
