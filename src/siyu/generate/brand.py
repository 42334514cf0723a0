"""Generate a whole brand: stores, staff, members, orders, events and the manifest.

Members are produced in fixed chunks of 50,000; each chunk's orders and events are derived
from it and appended at once, so memory stays flat whatever the brand size. The manifest
holds no timestamps or paths, so the same seed and arguments give byte-identical output.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from siyu.generate import events as events_mod
from siyu.generate import members as members_mod
from siyu.generate import orders as orders_mod
from siyu.generate.errors import GenerateError, GenerateErrorCode
from siyu.generate.plan import Plan
from siyu.generate.sinks import FORMATS, NdjsonSink, Sink, open_sink
from siyu.generate.stores import STAFF_COLUMNS, STORE_COLUMNS, build_roster, default_store_count

DEFAULT_START = date(2024, 1, 1)
DEFAULT_END = date(2026, 6, 30)
Progress = Callable[[int, int], None]  # (members done, members total)


@dataclass(frozen=True)
class GenerateRequest:
    members: int
    seed: int = 7
    format: str = "csv"
    start: date = DEFAULT_START
    end: date = DEFAULT_END
    stores: int | None = None

    def check(self) -> None:
        if self.members < 1 or self.members >= 500_000_000:
            raise GenerateError(
                GenerateErrorCode.INVALID_MEMBERS, "members must be between 1 and 499,999,999"
            )
        if self.end < self.start:
            raise GenerateError(
                GenerateErrorCode.INVALID_PERIOD, f"end {self.end} is before start {self.start}"
            )
        if self.format not in FORMATS:
            raise GenerateError(
                GenerateErrorCode.INVALID_FORMAT, f"format must be one of {', '.join(FORMATS)}"
            )
        if self.stores is not None and not 1 <= self.stores <= 99_999:
            raise GenerateError(
                GenerateErrorCode.INVALID_STORES, "stores must be between 1 and 99,999"
            )


def generate(
    out_dir: Path, request: GenerateRequest, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the brand's files into out_dir (created if missing) and return the manifest."""
    request.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    stores = request.stores or default_store_count(request.members)
    plan = Plan(
        request.seed,
        request.members,
        request.start,
        request.end,
        build_roster(seed=request.seed, stores=stores),
    )
    _write_csv(out_dir / "stores.csv", STORE_COLUMNS, plan.roster.stores)
    _write_csv(out_dir / "staff.csv", STAFF_COLUMNS, plan.roster.staff)
    totals = _stream(out_dir, plan, request.format, progress)
    manifest = _manifest(request, plan, stores, totals)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def generate_brand(
    out_dir: Path,
    *,
    members: int = 2000,
    seed: int = 7,
    format: str = "csv",
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    stores: int | None = None,
) -> dict[str, Any]:
    """The demo's small brand "Demo Tea" (2,000 members by default) as import files."""
    request = GenerateRequest(
        members=members, seed=seed, format=format, start=start, end=end, stores=stores
    )
    return generate(Path(out_dir), request)


@dataclass
class _Totals:
    orders: int = 0
    refunded_orders: int = 0
    guest_orders: int = 0
    rows: dict[str, int] | None = None
    malformed: dict[str, dict[str, int]] | None = None


def _stream(out_dir: Path, plan: Plan, fmt: str, progress: Progress | None) -> _Totals:
    members_sink = open_sink(fmt, out_dir, "members", members_mod.MEMBER_COLUMNS)
    orders_sink = open_sink(fmt, out_dir, "orders", orders_mod.ORDER_COLUMNS)
    events_sink = NdjsonSink(out_dir / "events.ndjson", events_mod.EVENT_FIELDS)
    totals = _Totals(malformed={"members": {}, "orders": {}, "events": {}})
    sinks: list[Sink] = [members_sink, orders_sink, events_sink]
    try:
        for chunk in range(plan.chunks):
            member_chunk = members_mod.generate_members(plan, chunk)
            order_chunk = orders_mod.generate_orders(plan, chunk, member_chunk, totals.orders)
            event_chunk = events_mod.generate_events(plan, chunk, member_chunk, events_sink.rows)
            members_sink.write(member_chunk.rows)
            orders_sink.write(order_chunk.rows)
            events_sink.write_objects(event_chunk.lines)
            _add(totals, member_chunk.malformed, order_chunk, event_chunk.malformed)
            if progress is not None:
                progress(plan.chunk_range(chunk)[1], plan.members)
    finally:
        for sink in sinks:
            sink.close()
    totals.rows = {
        "members": members_sink.rows,
        "orders": orders_sink.rows,
        "events": events_sink.rows,
    }
    return totals


def _add(
    totals: _Totals, members: dict[str, int], orders: orders_mod.OrderChunk, events: dict[str, int]
) -> None:
    assert totals.malformed is not None
    totals.orders += orders.orders
    totals.refunded_orders += orders.refunded_orders
    totals.guest_orders += orders.guest_orders
    for file, counts in (("members", members), ("orders", orders.malformed), ("events", events)):
        for kind, count in counts.items():
            totals.malformed[file][kind] = totals.malformed[file].get(kind, 0) + count


def _write_csv(
    path: Path, header: tuple[str, ...], rows: list[tuple[str, str, str, str, str]]
) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _manifest(request: GenerateRequest, plan: Plan, stores: int, totals: _Totals) -> dict[str, Any]:
    assert totals.rows is not None and totals.malformed is not None
    fmt = request.format
    malformed = {file: dict(sorted(kinds.items())) for file, kinds in totals.malformed.items()}
    return {
        "generator": "siyu generate",
        "brand": "Demo Tea",
        "seed": request.seed,
        "format": fmt,
        "start": request.start.isoformat(),
        "end": request.end.isoformat(),
        "files": {
            "stores.csv": len(plan.roster.stores),
            "staff.csv": len(plan.roster.staff),
            f"members.{fmt}": totals.rows["members"],
            f"orders.{fmt}": totals.rows["orders"],
            "events.ndjson": totals.rows["events"],
        },
        "counts": {
            "stores": len(plan.roster.stores),
            "physical_stores": stores,
            "staff": len(plan.roster.staff),
            "members": totals.rows["members"],
            "orders": totals.orders,
            "order_lines": totals.rows["orders"],
            "refunded_orders": totals.refunded_orders,
            "guest_orders": totals.guest_orders,
            "events": totals.rows["events"],
        },
        "malformed": malformed,
        "malformed_rows": sum(sum(kinds.values()) for kinds in malformed.values()),
    }
