"""Use cases of ingest: import a file, ingest rows from the API, import stores and staff.

Transactions: a file import commits once per batch (with its ImportRun counters) so a 50M-line
file neither holds one giant transaction nor loses work when interrupted; re-running the same
file is safe because every row is idempotent (duplicates are counted, never applied twice).
`ingest_records` (the API's batch ingest) is one transaction.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.ingest import columnar as columnar_lane
from siyu.ingest import member_lane
from siyu.ingest.errors import IngestError, IngestErrorCode
from siyu.ingest.models import DeadLetter, ImportRun
from siyu.ingest.readers import SourceRow, columns_of, detect_format, read_batches
from siyu.ingest.writer import BatchResult, Rejection, write_batch

KINDS = ("members", "orders", "events")
COLUMNAR_BATCH = 200_000  # lines per batch of the columnar lane (a larger batch_size wins)


@dataclass
class ImportResult:
    """The outcome of one import; `as_json()` is the DESIGN §4.6 shape."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    warnings: int = 0
    rejected_file: str | None = None
    members_created: int = 0
    merges: int = 0
    run_id: int | None = None
    rejections: list[Rejection] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "warnings": self.warnings,
            "rejected_file": self.rejected_file,
        }

    def absorb(self, batch: BatchResult) -> None:
        self.accepted += batch.accepted
        self.rejected += len(batch.rejected)
        self.duplicates += batch.duplicates
        self.warnings += batch.warnings
        self.members_created += batch.members_created
        self.merges += batch.merges
        self.rejections.extend(batch.rejected)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise IngestError(
            IngestErrorCode.UNKNOWN_KIND, f"unknown import kind {kind!r} (use {', '.join(KINDS)})"
        )


def rejected_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.csv")


def import_file(
    *,
    session_factory: sessionmaker[Session],
    kind: str,
    path: Path,
    now: datetime,
    tz: tzinfo,
    max_member_nos: int = 20,
    batch_size: int = 50_000,
    on_progress: Callable[[int], None] | None = None,
    columnar: bool = True,
) -> ImportResult:
    """Import a CSV/NDJSON/Parquet file of members, orders or events (DESIGN §4.2).

    Order and member files take a columnar lane when they can (`ingest.columnar`,
    `ingest.member_lane`); `columnar=False` forces the row-by-row path (the reference the
    lanes are tested against)."""
    _check_kind(kind)
    detect_format(path)  # existence and format first
    result = ImportResult()
    with session_factory() as session, _bulk_settings(session):
        run = ImportRun(kind=kind, source=str(path), started_at=now)
        session.add(run)
        session.commit()
        result.run_id = run.id
        lane = _columnar_lane(session, kind, path, tz=tz, now=now, columnar=columnar)
        lane_batches = (
            _columnar_batches(
                session,
                lane,
                batch_size=max(batch_size, COLUMNAR_BATCH),
                now=now,
                max_member_nos=max_member_nos,
            )
            if lane is not None
            else None
        )
        batches = lane_batches or (
            (len(rows), rows, None) for rows in read_batches(path, batch_size=batch_size)
        )
        try:
            for size, rows, stored in batches:
                batch = write_batch(
                    session, kind=kind, rows=rows, tz=tz, now=now, max_member_nos=max_member_nos
                )
                if stored is not None:
                    batch.add(stored)
                result.absorb(batch)
                _count_run(session, run, result, finished_at=None)
                session.commit()
                if on_progress is not None:
                    on_progress(size)
        except BaseException:
            session.rollback()  # so the clean-up below runs, and the error is the one raised
            raise
        finally:
            if lane is not None and lane_batches is not None:
                lane_batches.close()  # waits for a batch still being prepared ahead
                lane.close()
        result.rejected_file = _write_rejected(path, result.rejections)
        _count_run(session, run, result, finished_at=now)
        session.commit()
    return result


_LANES: dict[str, type[columnar_lane.FileLane]] = {
    "orders": columnar_lane.OrderLane,
    "members": member_lane.MemberLane,
}


def _columnar_lane(
    session: Session, kind: str, path: Path, *, tz: tzinfo, now: datetime, columnar: bool
) -> columnar_lane.FileLane | None:
    if not columnar or kind not in _LANES or session.get_bind().dialect.name != "sqlite":
        return None
    try:
        return _LANES[kind](path, tz=tz, now=now)
    except columnar_lane.LaneUnavailable:
        return None


def _columnar_batches(
    session: Session,
    lane: columnar_lane.FileLane,
    *,
    batch_size: int,
    now: datetime,
    max_member_nos: int,
) -> Generator[tuple[int, list[SourceRow], BatchResult | None], None, None]:
    """Per batch: the lane stores the settled orders, the slow lane takes the rest. The next
    batch is prepared in DuckDB (which releases the GIL) while this one is written."""
    ranges = list(lane.batches(batch_size))
    if not ranges:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siyu-import") as pool:
        ahead = pool.submit(lane.prepare, *ranges[0])
        for index, (start, stop) in enumerate(ranges):
            ahead.result()
            lane.take_prepared()
            if index + 1 < len(ranges):
                ahead = pool.submit(lane.prepare, *ranges[index + 1])
            if isinstance(lane, member_lane.MemberLane):
                stored = member_lane.store_batch(
                    session, lane, start, stop, now=now, max_member_nos=max_member_nos
                )
            else:
                assert isinstance(lane, columnar_lane.OrderLane)
                stored = columnar_lane.store_batch(
                    session, lane, start, stop, now=now, max_member_nos=max_member_nos
                )
            yield stored.rows, stored.slow, stored.result


@contextmanager
def _bulk_settings(session: Session) -> Iterator[None]:
    """While an import runs on SQLite, its connection keeps 256 MB of pages instead of 2 MB
    (an import touches the order-line, identity and record indexes all over, so past a few
    hundred thousand rows it would re-read pages for every batch) and does not check foreign
    keys: every member or identity id an import writes was read from the store or created in
    the same transaction (SQLite has one writer), and the checks were a fifth of the time of
    inserting an order line. Both settings are restored after, as the pooled connection may
    serve an API request next."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    default = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    checks = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.exec_driver_sql("PRAGMA cache_size=-262144")
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction: takes effect
    try:
        yield
    finally:
        connection = session.connection()
        connection.exec_driver_sql(f"PRAGMA cache_size={int(default or -2000)}")
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if checks else 'OFF'}")
        if connection.exec_driver_sql("PRAGMA foreign_keys").scalar() != checks:
            connection.invalidate()  # left inside a transaction: let the pool open a new one


def _count_run(
    session: Session, run: ImportRun, result: ImportResult, *, finished_at: datetime | None
) -> None:
    run.accepted = result.accepted
    run.rejected = result.rejected
    run.duplicates = result.duplicates
    run.warnings = result.warnings
    run.rejected_file = result.rejected_file
    run.finished_at = finished_at


def _write_rejected(path: Path, rejections: Sequence[Rejection]) -> str | None:
    """`<input>.rejected.csv`: the original columns plus `line` and `reason`."""
    target = rejected_path(path)
    if not rejections:
        target.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        return None
    columns = columns_of(path)
    for rejection in rejections:
        for name in rejection.row or {}:
            if name not in columns:
                columns.append(name)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "line", "reason"])
        for rejection in sorted(rejections, key=lambda r: r.line):
            row = rejection.row or {}
            writer.writerow(
                [_cell(row.get(c)) for c in columns] + [rejection.line, rejection.reason]
            )
    return str(target)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def ingest_records(
    *,
    session_factory: sessionmaker[Session],
    kind: str,
    rows: list[dict[str, Any]],
    now: datetime,
    tz: tzinfo,
    max_member_nos: int = 20,
    source: str = "api",
) -> ImportResult:
    """Ingest rows sent to the API; rejected rows become DeadLetter rows (index = 1-based line)."""
    _check_kind(kind)
    result = ImportResult()
    with session_factory() as session:
        run = ImportRun(kind=kind, source=source, started_at=now)
        session.add(run)
        sources = [SourceRow(index, row) for index, row in enumerate(rows, start=1)]
        result.absorb(
            write_batch(
                session, kind=kind, rows=sources, tz=tz, now=now, max_member_nos=max_member_nos
            )
        )
        for rejection in result.rejections:
            session.add(
                DeadLetter(
                    source=f"{source}:{kind}",
                    reference=f"line {rejection.line}",
                    reason=rejection.reason,
                    payload=_json_safe(rejection.row),
                    received_at=now,
                )
            )
        _count_run(session, run, result, finished_at=now)
        session.flush()
        result.run_id = run.id
        session.commit()
    return result


def _json_safe(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else json.loads(json.dumps(row, default=str))


def import_runs(*, session_factory: sessionmaker[Session], limit: int = 20) -> list[dict[str, Any]]:
    """The latest import runs, newest first (for the console and `siyu import` history)."""
    with session_factory() as session:
        runs = session.scalars(sa.select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "source": r.source,
                "accepted": r.accepted,
                "rejected": r.rejected,
                "duplicates": r.duplicates,
                "warnings": r.warnings,
                "rejected_file": r.rejected_file,
                "started_at": r.started_at.isoformat(),
            }
            for r in runs
        ]
