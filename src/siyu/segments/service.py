"""Use cases of segments: preview, saved segments, snapshot refresh with entered/exited, export.

Other domains call `evaluate_member_ids` (rule tags, coupon issuance) ; snapshots live in
`refresh.py`.

Decisions where the issue is silent:
- Exports carry member ids and non-identifying attributes only; contacts stay in the
  operational store. The preview sample masks names (`王*`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
import sqlalchemy as sa
from pyroaring import BitMap, FrozenBitMap
from sqlalchemy.orm import Session
from sqlglot import exp

from siyu.audit import service as audit_service
from siyu.segments.bitmaps import (
    BitmapEvaluation,
    IndexedWarehouse,
    answered_by_index,
    cache_for,
    first_members,
)
from siyu.segments.compiler import compile_segment, count_query, render
from siyu.segments.dsl import (
    Condition,
    dump_definition,
    parse_definition,
    references,
)
from siyu.segments.errors import (
    SegmentError,
    SegmentErrorCode,
    SegmentInUseError,
    SegmentNameTakenError,
    SegmentNotFoundError,
)
from siyu.segments.models import Segment, SegmentSnapshot
from siyu.segments.schemas import (
    ExportFormat,
    Preview,
    SampleMember,
    Schedule,
    SegmentRead,
)
from siyu.warehouse.member_bitmaps import index_state
from siyu.warehouse.order_totals import MemberOrderStats, member_order_stats

SAMPLE_SIZE = 10
SAMPLE_COLUMNS = ("member_id", "name", "gender", "store_code")
MAX_NAME_LENGTH = 128
EXPORT_COLUMNS = ("member_id", "gender", "store_code", "channel", "registered_at")
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Warehouse(Protocol):
    """What segments need of a warehouse: DuckDBWarehouse and ClickHouseWarehouse both fit."""

    dialect: str

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...


Definition = Condition | dict[str, Any]


# --- evaluation -------------------------------------------------------------------------------


def evaluate_member_ids(
    *,
    warehouse: Warehouse,
    definition: Definition,
    now: datetime,
    session: Session | None = None,
    timezone: ZoneInfo = SHANGHAI,
) -> set[int]:
    """Member ids in the segment at `now`; `session` resolves nested saved segments."""
    query = _compile(definition, warehouse, now=now, session=session, timezone=timezone)
    return {int(row[0]) for row in warehouse.query(render(query, warehouse.dialect))}


def count_members(
    *,
    warehouse: Warehouse,
    definition: Definition,
    now: datetime,
    session: Session | None = None,
    timezone: ZoneInfo = SHANGHAI,
) -> int:
    """How many members the segment holds at `now` (counted in the warehouse, from the member
    bitmap index when it answers part of the tree)."""
    condition = parse_definition(definition) if isinstance(definition, dict) else definition
    answered_by = answered_by_index(condition) if warehouse.dialect == "duckdb" else "SQL"
    members = _bitmap_members(
        condition, answered_by, warehouse, now=now, session=session, timezone=timezone
    )
    if members is not None:
        return len(members)
    orders = order_sources(warehouse)
    query = count_query(_compile(definition, orders, now=now, session=session, timezone=timezone))
    return int(warehouse.query(render(query, warehouse.dialect))[0][0])


def preview_segment(
    *,
    warehouse: Warehouse,
    definition: Definition,
    now: datetime,
    session: Session | None = None,
    timezone: ZoneInfo = SHANGHAI,
    sample_size: int = SAMPLE_SIZE,
) -> Preview:
    """The count and a masked sample of the first members, as the builder shows while editing."""
    started = time.perf_counter()
    condition = parse_definition(definition) if isinstance(definition, dict) else definition
    answered_by = answered_by_index(condition) if warehouse.dialect == "duckdb" else "SQL"
    members = _bitmap_members(
        condition, answered_by, warehouse, now=now, session=session, timezone=timezone
    )
    if members is not None:
        count, rows = len(members), _sample_of(members, warehouse, sample_size)
    else:
        answered_by = "SQL"
        count, rows = _sql_preview(
            condition, warehouse, now=now, session=session, timezone=timezone,
            sample_size=sample_size,
        )  # fmt: skip
    sample = [SampleMember(int(r[0]), mask_name(r[1]), r[2], r[3]) for r in rows]
    return Preview(
        count=count, sample=sample, elapsed_ms=_ms_since(started), answered_by=answered_by
    )


def _sql_preview(
    condition: Condition,
    warehouse: Warehouse,
    *,
    now: datetime,
    session: Session | None,
    timezone: ZoneInfo,
    sample_size: int,
) -> tuple[int, list[tuple[Any, ...]]]:
    """Count and sample rows (SAMPLE_COLUMNS first) from the compiled SQL."""
    orders = order_sources(warehouse)
    query = _compile(condition, orders, now=now, session=session, timezone=timezone)
    if warehouse.dialect == "duckdb":
        rows = warehouse.query(render(_count_and_sample(query, sample_size), "duckdb"))
        return (int(rows[0][-1]) if rows else 0), rows
    # ClickHouse inlines CTEs, so a shared one would run twice anyway: two queries, the
    # sample from the segment's own WHERE (no second pass over the segment).
    count = int(warehouse.query(render(count_query(query), warehouse.dialect))[0][0])
    sample_query = _compile(
        condition, orders, now=now, session=session, timezone=timezone, columns=SAMPLE_COLUMNS
    ).order_by(exp.column("member_id", "m")).limit(sample_size)  # fmt: skip
    return count, warehouse.query(render(sample_query, warehouse.dialect))


def _bitmap_members(
    condition: Condition,
    answered_by: str,
    warehouse: Warehouse,
    *,
    now: datetime,
    session: Session | None,
    timezone: ZoneInfo,
) -> BitMap | FrozenBitMap | None:
    """The segment's members from the member bitmap index (segments/bitmaps.py); None when
    SQL alone answers the tree better (`answered_by`, from `answered_by_index`) or the index
    is not current."""
    if answered_by == "SQL" or warehouse.dialect != "duckdb":
        return None
    indexed = cast(IndexedWarehouse, warehouse)
    state = index_state(indexed.connection)
    if state is None:
        return None
    orders: list[OrderSources] = []  # looked up on the first SQL leaf only

    def sql_members(leaf: Condition) -> str:
        if not orders:
            orders.append(order_sources(warehouse))
        query = _compile(leaf, orders[0], now=now, session=session, timezone=timezone)
        return render(query, warehouse.dialect)

    evaluation = BitmapEvaluation(
        indexed, sql_members, now=now, timezone=timezone, cache=cache_for(warehouse, state)
    )
    return evaluation.members(condition)


def _sample_of(
    members: BitMap | FrozenBitMap, warehouse: Warehouse, size: int
) -> list[tuple[Any, ...]]:
    """The sample columns of the segment's `size` lowest member ids (ids as parameters)."""
    first = first_members(members, size)
    if not first:
        return []
    marks = ", ".join("?" for _ in first)
    return warehouse.query(
        f"SELECT {', '.join(SAMPLE_COLUMNS)} FROM members WHERE member_id IN ({marks}) "
        "ORDER BY member_id",
        first,
    )


def _count_and_sample(query: exp.Select, sample_size: int) -> exp.Select:
    """One DuckDB query for the builder: the segment's member ids evaluated once
    (a MATERIALIZED CTE), counted, and the first `sample_size` of them joined to `members`.
    Each row is (SAMPLE_COLUMNS…, count); no rows means an empty segment."""
    first = exp.select("member_id").from_("segment").order_by("member_id").limit(sample_size)
    total = exp.select(exp.Count(this=exp.Star())).from_("segment").subquery()
    return (
        exp.select(*[exp.column(c, "s") for c in SAMPLE_COLUMNS], total.as_("segment_count"))
        .from_(exp.table_("members", alias="s"))
        .where(exp.column("member_id", "s").isin(query=first))
        .with_("segment", as_=query, materialized=True)
        .order_by(exp.column("member_id", "s"))
    )


def mask_name(name: str | None) -> str:
    """Keep the first character only: `Wang Fang` → `W********`, `王芳` → `王*`."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


def export_segment(
    *,
    warehouse: Warehouse,
    definition: Definition,
    now: datetime,
    out: Path,
    export_format: ExportFormat = ExportFormat.CSV,
    session: Session | None = None,
    timezone: ZoneInfo = SHANGHAI,
) -> int:
    """Write the segment's members to a CSV or Parquet file; returns the number of rows."""
    select = _compile(
        definition, warehouse, now=now, session=session, timezone=timezone, columns=EXPORT_COLUMNS
    ).order_by(exp.column("member_id", "m"))
    rows = warehouse.query(render(select, warehouse.dialect))
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(EXPORT_COLUMNS)
    schema = pa.schema(
        [
            ("member_id", pa.int64()),
            ("gender", pa.string()),
            ("store_code", pa.string()),
            ("channel", pa.string()),
            ("registered_at", pa.timestamp("us")),
        ]
    )
    table = pa.table([list(c) for c in columns], schema=schema)
    out.parent.mkdir(parents=True, exist_ok=True)
    if export_format == ExportFormat.PARQUET:
        pa_parquet.write_table(table, out)
    else:
        pa_csv.write_csv(table, out)
    return int(table.num_rows)


@dataclass(frozen=True)
class OrderSources:
    """Where a compiled segment reads orders: `order_totals` while the sync keeps it current
    (with the member summary beside it), else the `orders` view."""

    orders_table: str
    member_stats: MemberOrderStats | None


def order_sources(warehouse: Warehouse) -> OrderSources:
    stats = member_order_stats(warehouse)
    return OrderSources("order_totals" if stats is not None else "orders", stats)


def _compile(
    definition: Definition,
    orders: Warehouse | OrderSources,
    *,
    now: datetime,
    session: Session | None,
    timezone: ZoneInfo,
    columns: Sequence[str] = ("member_id",),
) -> exp.Select:
    """Compile for a warehouse (or its already looked-up order sources)."""
    condition = parse_definition(definition) if isinstance(definition, dict) else definition
    resolve = segment_resolver(session) if session is not None else None
    sources = orders if isinstance(orders, OrderSources) else order_sources(orders)
    return compile_segment(
        condition,
        now=now,
        timezone=timezone,
        resolve=resolve,
        orders_table=sources.orders_table,
        member_stats=sources.member_stats,
        columns=columns,
    )


def segment_resolver(session: Session) -> Callable[[str], Condition]:
    """Resolves `{"segment": name}` to the saved definition (used by tag rules too)."""

    def resolve(name: str) -> Condition:
        return parse_definition(get_row(session, name).definition)

    return resolve


# --- saved segments ---------------------------------------------------------------------------


def get(*, db_session: Session, name: str) -> SegmentRead:
    return _read(db_session, get_row(db_session, name))


def get_all(*, db_session: Session) -> list[SegmentRead]:
    segments = db_session.scalars(sa.select(Segment).order_by(Segment.name))
    return [_read(db_session, segment) for segment in segments]


def save_segment(
    *,
    db_session: Session,
    name: str,
    definition: dict[str, Any],
    now: datetime,
    owner: str,
    description: str | None = None,
    schedule: Schedule | None = None,
) -> SegmentRead:
    """Create the segment, or replace the definition (and given fields) of the one so named."""
    existing = db_session.scalar(sa.select(Segment).where(Segment.name == name))
    canonical = _checked_definition(db_session, name, definition, now)
    segment = existing or _new_segment(db_session, name=name, owner=owner, now=now)
    segment.definition = canonical
    if description is not None:
        segment.description = description
    if schedule is not None:
        segment.schedule = Schedule(schedule).value
    segment.updated_at = now
    db_session.flush()
    action = "segment.updated" if existing else "segment.created"
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=owner,
        action=action,
        entity_type="segment",
        entity_id=segment.id,
        detail={"name": name},
    )
    return _read(db_session, segment)


def create_segment(
    *,
    db_session: Session,
    name: str,
    definition: dict[str, Any],
    now: datetime,
    owner: str,
    description: str = "",
    schedule: Schedule = Schedule.DAILY,
) -> SegmentRead:
    """Save a new segment; refuses a name already taken."""
    if db_session.scalar(sa.select(Segment.id).where(Segment.name == name)) is not None:
        raise SegmentNameTakenError(f"a segment named {name!r} already exists")
    return save_segment(
        db_session=db_session,
        name=name,
        definition=definition,
        now=now,
        owner=owner,
        description=description,
        schedule=schedule,
    )


def delete_segment(*, db_session: Session, name: str, now: datetime, actor: str) -> None:
    """Delete a segment and its snapshots; refused while another segment refers to it."""
    segment = get_row(db_session, name)
    for other in db_session.scalars(sa.select(Segment).where(Segment.id != segment.id)):
        if name in references(parse_definition(other.definition)):
            raise SegmentInUseError(f"segment {name!r} is used by segment {other.name!r}")
    for tag_name, rule in db_session.execute(sa.select(_tags.c.name, _tags.c.rule)):
        if isinstance(rule, dict) and _refers_to(rule, name):
            raise SegmentInUseError(f"segment {name!r} is used by the rule of tag {tag_name!r}")
    db_session.execute(sa.delete(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment.id))
    db_session.delete(segment)
    audit_service.record(
        db_session=db_session,
        now=now,
        actor=actor,
        action="segment.deleted",
        entity_type="segment",
        entity_id=segment.id,
        detail={"name": name},
    )


_tags = sa.table("tags", sa.column("name"), sa.column("rule", sa.JSON))


def _refers_to(rule: dict[str, Any], name: str) -> bool:
    try:
        return name in references(parse_definition(rule))
    except SegmentError:  # an unparsable rule refers to nothing we could delete
        return False


def _new_segment(db_session: Session, *, name: str, owner: str, now: datetime) -> Segment:
    clean = name.strip()
    if not clean or clean != name or len(name) > MAX_NAME_LENGTH:
        raise SegmentError(
            f"segment name {name!r}: must be 1–{MAX_NAME_LENGTH} characters without "
            "leading or trailing spaces"
        )
    segment = Segment(name=name, owner=owner, description="", created_at=now, updated_at=now)
    segment.schedule = Schedule.DAILY.value
    db_session.add(segment)
    return segment


def _checked_definition(
    db_session: Session, name: str, definition: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Canonical JSON of a valid definition whose references exist and form no cycle."""
    condition = parse_definition(definition)
    resolver = segment_resolver(db_session)

    def resolve(other: str) -> Condition:
        # The segment being saved resolves to its new definition, so a cycle through it shows.
        return condition if other == name else resolver(other)

    compile_segment(condition, now=now, resolve=resolve)
    if name in references(condition):
        raise SegmentError(f"segment {name!r} refers to itself", code=SegmentErrorCode.CYCLE)
    return dump_definition(condition)


def get_row(db_session: Session, name: str) -> Segment:
    segment = db_session.scalar(sa.select(Segment).where(Segment.name == name))
    if segment is None:
        raise SegmentNotFoundError(f"no saved segment named {name!r}")
    return segment


def _read(db_session: Session, segment: Segment) -> SegmentRead:
    last = latest_snapshot(db_session, segment.id)
    return SegmentRead(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        definition=segment.definition,
        owner=segment.owner,
        schedule=Schedule(segment.schedule),
        created_at=segment.created_at,
        updated_at=segment.updated_at,
        last_count=last.member_count if last else None,
        last_refreshed_at=last.taken_at if last else None,
    )


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def latest_snapshot(db_session: Session, segment_id: int) -> SegmentSnapshot | None:
    """The most recent snapshot of a segment, if any."""
    return db_session.scalar(
        sa.select(SegmentSnapshot)
        .where(SegmentSnapshot.segment_id == segment_id)
        .order_by(SegmentSnapshot.taken_at.desc())
        .limit(1)
    )
