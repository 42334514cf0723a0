"""The incremental, restartable copy of the operational store into the warehouse.

Each source has a watermark row in `sync_state`. A batch of rows and its new watermark are
written in ONE warehouse transaction, so a crash at any instant leaves either the whole batch
with its watermark or neither; a restart continues from the last committed watermark and never
copies a row twice (order lines and events are plain INSERTs into tables with primary keys: a
second copy would fail loudly, not pass silently).

- order lines and events: append-only sources, read by operational id > watermark;
  member ids are resolved through `merged_into_id` at copy time.
- merges: `member_merges` rows past the watermark remap the warehouse rows of the merged id to
  the survivor (chains resolved), drop the merged member and its tags, and re-copy the
  survivor with its tags.
- members (and their tags): read by `updated_at`, re-reading an overlap of one day before the
  watermark because writers stamp rows with their own clock. Only members whose row or tags
  differ from the warehouse's are rewritten, so re-reads cost a comparison, not a write; their
  watermark moves when the whole run's members are in. Whoever changes a member's tags bumps
  `members.updated_at` (the tags service does), so tag removals propagate too. A change stamped
  earlier than watermark − overlap (a back-dated `--now`) is only seen by `full=True`.
- rows leave the store through `siyu.store_copy` (CSV built by SQLite, or PostgreSQL's COPY),
  and are converted in DuckDB: no Python object per row on the order-line and member paths.
- stores: a small dimension, replaced whole on every run.
- the member bitmap index (segment previews): each batch that rewrites members or tags updates
  their bitmaps in its transaction; the end of a run rebuilds it only when absent or stale
  (warehouse/member_bitmaps.py).
Every copied member id is appended to `member_changes` with the run's sequence number so
profiles can recompute only touched members.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from siyu.identity.models import Member, MemberMerge
from siyu.staff.models import Store
from siyu.staff.warehouse_owners import sync_member_owners
from siyu.store_copy import Column, Source, copy_rows, create_target
from siyu.warehouse.coupon_sync import copy_member_coupons
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.member_bitmaps import (
    apply_member_changes,
    ensure_member_bitmaps,
    held_bitmaps,
    note_member_write,
)
from siyu.warehouse.order_totals import (
    count_lines,
    ensure_order_totals,
    restat_members,
    retotal_orders,
)

MEMBER_OVERLAP = timedelta(days=1)
IN_CHUNK = 5_000  # ids per IN (...) list: below SQLite's bound-parameter limit
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Bookkeeping tables owned by the sync (created on demand, beside the shared schema).
SYNC_TABLES = {
    "member_changes": "seq BIGINT NOT NULL, member_id BIGINT NOT NULL",
}


@dataclass
class SyncResult:
    """What one run copied; `seq` numbers the run in `member_changes`."""

    seq: int = 0
    order_lines: int = 0
    events: int = 0
    members: int = 0
    removed_members: int = 0
    member_tags: int = 0
    merges: int = 0
    stores: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def sync_all(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse,
    tz: tzinfo,
    batch_size: int = 200_000,
    full: bool = False,
) -> SyncResult:
    """Bring the warehouse up to date with the operational store; safe to re-run at any time."""
    ensure_sync_tables(warehouse)
    result = SyncResult(seq=_next_seq(warehouse))
    run = _Run(warehouse=warehouse, tz=tz, batch_size=batch_size, result=result)
    with session_factory() as session:
        run.session = session
        run.copy_order_lines()
        run.copy_events()
        run.follow_merges()
        run.copy_members(full=full)
        run.replace_stores()
        copy_member_coupons(session, warehouse)  # coupon states for segments (issue #7)
    sync_member_owners(session_factory=session_factory, warehouse=warehouse)  # issue #8
    ensure_order_totals(warehouse)  # segments read order totals (warehouse/order_totals.py)
    ensure_member_bitmaps(warehouse)  # segment previews read it (warehouse/member_bitmaps.py)
    return result


def ensure_sync_tables(warehouse: DuckDBWarehouse) -> None:
    for table, columns in SYNC_TABLES.items():
        warehouse.connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def read_watermark(warehouse: DuckDBWarehouse, name: str) -> int:
    rows = warehouse.query("SELECT watermark FROM sync_state WHERE name = ?", [name])
    return int(rows[0][0]) if rows else 0


def _next_seq(warehouse: DuckDBWarehouse) -> int:
    return int(warehouse.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM member_changes")[0][0])


@contextmanager
def _warehouse_transaction(warehouse: DuckDBWarehouse) -> Iterator[Any]:
    connection = warehouse.connection
    connection.execute("BEGIN TRANSACTION")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _micros(value: datetime) -> int:
    return (value.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)


def _chunks(values: Sequence[int], size: int = IN_CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class _Run:
    """One sync run; each method owns its batches' warehouse transactions."""

    session: Session

    def __init__(
        self, *, warehouse: DuckDBWarehouse, tz: tzinfo, batch_size: int, result: SyncResult
    ) -> None:
        self.warehouse = warehouse
        self.tz = tz
        self.batch_size = batch_size
        self.result = result
        self._hour_offsets: dict[datetime, int | None] = {}

    # -- helpers -------------------------------------------------------------------------

    def _insert_arrow(self, connection: Any, table: str, batch: pa.Table, verb: str) -> None:
        connection.register("_sync_batch", batch)
        try:
            columns = ", ".join(batch.column_names)
            connection.execute(f"{verb} INTO {table} ({columns}) SELECT {columns} FROM _sync_batch")
        finally:
            connection.unregister("_sync_batch")

    def _set_watermark(self, connection: Any, name: str, value: int) -> None:
        connection.execute(
            "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES (?, ?)", [name, value]
        )

    def _note_changes(self, connection: Any, member_ids: Iterable[int | None]) -> None:
        ids = sorted({m for m in member_ids if m is not None})
        if ids:
            batch = pa.table(
                {"seq": pa.array([self.result.seq] * len(ids), pa.int64()), "member_id": ids}
            )
            self._insert_arrow(connection, "member_changes", batch, "INSERT")

    def _resolve(self, member_ids: Iterable[int | None]) -> dict[int, int]:
        """Map each merged-away id to its final survivor (others map to themselves)."""
        resolved = {m: m for m in member_ids if m is not None}
        pending = sorted(set(resolved))
        pointers: dict[int, int] = {}
        while pending:
            found: list[int] = []
            for chunk in _chunks(pending):
                rows = self.session.execute(
                    sa.select(Member.id, Member.merged_into_id).where(
                        Member.id.in_(chunk), Member.merged_into_id.is_not(None)
                    )
                ).all()
                for member_id, target in rows:
                    if member_id not in pointers and target is not None:
                        pointers[member_id] = target
                        found.append(target)
            pending = sorted(set(found) - set(pointers))
        for source in resolved:
            target, seen = source, set()
            while target in pointers and target not in seen:
                seen.add(target)
                target = pointers[target]
            resolved[source] = target
        return resolved

    def _batches(self, select: sa.Select[Any], id_column: Any, name: str) -> Iterator[list[Any]]:
        """Rows (Core, not ORM: millions of them) with id past the watermark, in id order."""
        watermark = read_watermark(self.warehouse, name)
        while True:
            statement = select.where(id_column > watermark).order_by(id_column)
            rows = list(self.session.execute(statement.limit(self.batch_size)).all())
            if not rows:
                return
            yield rows
            watermark = rows[-1].id

    # -- order lines and events ----------------------------------------------------------

    def copy_order_lines(self) -> None:
        """Lines past the watermark, converted in DuckDB (members through merges, business
        dates), a batch at a time."""
        self._copy_appended(_STORED_LINES, "_staged_lines", "order_lines", self._write_order_lines)

    def _copy_appended(
        self,
        source: Source,
        staging: str,
        watermark_name: str,
        write: Callable[[Any, int], None],
    ) -> None:
        """Rows of an append-only source past its watermark, a batch at a time: copied out of
        the store as CSV (`siyu.store_copy`) into the DuckDB table `staging`, then handed to
        `write`, which commits them with their watermark in one transaction."""
        connection = self.warehouse.connection
        try:
            while True:
                create_target(connection, staging, source)
                copied = copy_rows(
                    self.session,
                    connection,
                    source,
                    staging,
                    after_id=read_watermark(self.warehouse, watermark_name),
                    limit=self.batch_size,
                )
                if not copied:
                    return
                write(connection, copied)
        finally:
            connection.execute(f"DROP TABLE IF EXISTS {staging}")

    def _write_order_lines(self, connection: Any, copied: int) -> None:
        """The staged lines into `order_lines`, their members resolved through merges and
        their business dates computed in the business time zone."""
        member_ids = [
            row[0]
            for row in connection.execute("SELECT DISTINCT member_id FROM _staged_lines").fetchall()
        ]
        owners = self._resolve(member_ids)
        zone = _zone_table(connection, self.tz, self._hour_offsets)
        connection.register(
            "_line_owners",
            pa.table(
                {
                    "member_id": pa.array(list(owners), pa.int64()),
                    "owner": pa.array(list(owners.values()), pa.int64()),
                }
            ),
        )
        connection.register("_line_zone", zone)
        try:
            batch = connection.sql(
                """SELECT s.order_id || ':' || s.line_no AS line_key, s.order_id, s.line_no,
                    o.owner AS member_id, s.store_code, s.channel, s.paid_at,
                    coalesce(z.paid_date,
                        CAST(s.paid_at + to_seconds(h.offset_seconds) AS DATE)) AS paid_date,
                    s.amount, s.status, s.category, s.sku
                FROM _staged_lines s JOIN _line_owners o USING (member_id)
                LEFT JOIN _line_zone h ON h.hour = date_trunc('hour', s.paid_at)
                    AND h.instant IS NULL
                LEFT JOIN _line_zone z ON z.instant = s.paid_at
                ORDER BY s.id"""
            ).to_arrow_table()
        finally:
            connection.unregister("_line_owners")
            connection.unregister("_line_zone")
        if batch.num_rows != copied:  # every line has a member; never drop one silently
            raise RuntimeError(f"sync: {copied} order lines staged, {batch.num_rows} resolved")
        last_id = connection.execute("SELECT max(id) FROM _staged_lines").fetchall()[0][0]
        with _warehouse_transaction(self.warehouse) as connection:
            lines_before = count_lines(connection)
            self._insert_arrow(connection, "order_lines", batch, "INSERT")
            retotal_orders(
                connection, batch.column("order_id").to_pylist(), lines_before=lines_before
            )
            self._note_changes(connection, owners.values())
            self._set_watermark(connection, "order_lines", int(last_id))
        self.result.order_lines += batch.num_rows

    def copy_events(self) -> None:
        """Events past the watermark, a batch at a time, copied like order lines; only their
        JSON properties pass through Python (written with sorted keys)."""
        self._copy_appended(_STORED_EVENTS, "_staged_events", "events", self._write_staged_events)

    def _write_staged_events(self, connection: Any, copied: int) -> None:
        staged = connection.sql("SELECT * FROM _staged_events ORDER BY id").to_arrow_table()
        member_ids = staged.column("member_id").to_pylist()
        owners = self._resolve(member_ids)
        batch = pa.table(
            {
                "event_id": staged.column("event_id"),
                "member_id": pa.array([_owner(owners, m) for m in member_ids], pa.int64()),
                "type": staged.column("type"),
                "occurred_at": staged.column("occurred_at"),
                "properties": pa.array(
                    [_canonical_json(text) for text in staged.column("properties").to_pylist()],
                    pa.string(),
                ),
            }
        )
        if batch.num_rows != copied:  # pragma: no cover - a staged row always comes back
            raise RuntimeError(f"sync: {copied} events staged, {batch.num_rows} read back")
        last_id = staged.column("id")[-1].as_py()
        with _warehouse_transaction(self.warehouse) as connection:
            self._insert_arrow(connection, "events", batch, "INSERT")
            self._note_changes(connection, owners.values())
            self._set_watermark(connection, "events", int(last_id))
        self.result.events += batch.num_rows

    # -- merges --------------------------------------------------------------------------

    def follow_merges(self) -> None:
        merge_table = MemberMerge.__table__
        for merges in self._batches(sa.select(merge_table), merge_table.c.id, "member_merges"):
            mapping = _close_chains({m.merged_id: m.survivor_id for m in merges})
            survivors = sorted(set(mapping.values()))
            batch = pa.table(
                {
                    "merged": pa.array(list(mapping), pa.int64()),
                    "survivor": pa.array(list(mapping.values()), pa.int64()),
                }
            )
            with _warehouse_transaction(self.warehouse) as connection:
                held = held_bitmaps(connection, list(mapping))
                connection.register("_merge_map", batch)
                try:
                    for table in ("order_lines", "events", "order_totals"):
                        connection.execute(
                            f"UPDATE {table} SET member_id = _merge_map.survivor FROM _merge_map "
                            f"WHERE {table}.member_id = _merge_map.merged"
                        )
                    for table in ("members", "member_tags"):
                        connection.execute(
                            f"DELETE FROM {table} "
                            "WHERE member_id IN (SELECT merged FROM _merge_map)"
                        )
                finally:
                    connection.unregister("_merge_map")
                restat_members(connection, [*mapping, *survivors])
                note_member_write(connection)
                apply_member_changes(connection, list(mapping), held=held)
                self._note_changes(connection, survivors)
                self._set_watermark(connection, "member_merges", merges[-1].id)
            self.result.merges += len(merges)
            self._copy_members_by_id(survivors)

    # -- members and tags ----------------------------------------------------------------

    def copy_members(self, *, full: bool) -> None:
        """Members changed since the watermark (less MEMBER_OVERLAP) and their tags. The
        watermark moves once every batch is in: a run cut short re-reads them, which writes
        nothing twice."""
        watermark = 0 if full else read_watermark(self.warehouse, "members")
        since = max(EPOCH + timedelta(microseconds=watermark) - MEMBER_OVERLAP, EPOCH)
        newest = self._copy_members_where(f"updated_at >= {_instant_literal(self.session, since)}")
        if newest is not None:
            with _warehouse_transaction(self.warehouse) as connection:
                previous = read_watermark(self.warehouse, "members")
                micros = _micros(newest.replace(tzinfo=UTC))
                self._set_watermark(connection, "members", max(micros, previous))

    def _copy_members_by_id(self, member_ids: Sequence[int]) -> None:
        for chunk in _chunks(member_ids):
            self._copy_members_where(f"id IN ({', '.join(str(int(m)) for m in chunk)})")

    def _copy_members_where(self, condition: str) -> datetime | None:
        """The members matching `condition` (store SQL) and their tags, copied out of the store
        as CSV (`siyu.store_copy`) and written a batch at a time; only those whose row or tags
        differ from the warehouse's are rewritten. Returns the newest `updated_at` copied."""
        connection = self.warehouse.connection
        members = Source("members", _STORED_MEMBER_COLUMNS, where=condition)
        tags = Source(
            "member_tags",
            _STORED_TAG_COLUMNS,
            where=f"member_id IN (SELECT id FROM members WHERE {condition})",
            key="rowid",
        )
        try:
            for name, source in (("_staged_members", members), ("_staged_tags", tags)):
                create_target(connection, name, source)
                copy_rows(self.session, connection, source, name)
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM _staged_members ORDER BY id"
                ).fetchall()
            ]
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size]
                self._write_staged_members(connection, chunk[0], chunk[-1])
            newest: datetime | None = connection.execute(
                "SELECT max(updated_at) FROM _staged_members"
            ).fetchall()[0][0]
        finally:
            connection.execute("DROP TABLE IF EXISTS _staged_members")
            connection.execute("DROP TABLE IF EXISTS _staged_tags")
        return newest

    def _write_staged_members(self, connection: Any, low: int, high: int) -> None:
        between = f"BETWEEN {int(low)} AND {int(high)}"
        rows = connection.sql(
            f"""SELECT id AS member_id, gender,
                CASE WHEN erased_at IS NULL THEN birthday END AS birthday,
                registered_at, store_code, channel,
                CASE WHEN erased_at IS NULL THEN name END AS name, updated_at
            FROM _staged_members WHERE merged_into_id IS NULL AND id {between} ORDER BY id"""
        ).to_arrow_table()
        tag_rows = connection.sql(
            f"""SELECT DISTINCT t.member_id, t.tag FROM _staged_tags t
            JOIN _staged_members m ON m.id = t.member_id AND m.merged_into_id IS NULL
            WHERE t.member_id {between} ORDER BY 1, 2"""
        ).to_arrow_table()
        gone = [
            row[0]
            for row in connection.execute(
                f"SELECT id FROM _staged_members WHERE merged_into_id IS NOT NULL AND id {between}"
            ).fetchall()
        ]
        self._write_member_rows(rows, tag_rows, gone)

    def _write_member_rows(self, rows: pa.Table, tag_rows: pa.Table, gone: list[int]) -> None:
        """Live members' warehouse rows and tags, and merged-away member ids, in one
        transaction; only what differs from the warehouse is written."""
        with _warehouse_transaction(self.warehouse) as connection:
            changed = self._changed_members(connection, rows)
            dirty = _differing(connection, rows, tag_rows, gone)
            if dirty:
                self._rewrite_members(connection, dirty, rows, tag_rows)
            self._note_changes(connection, changed)
        self.result.members += rows.num_rows
        self.result.removed_members += len(gone)
        self.result.member_tags += tag_rows.num_rows

    def _rewrite_members(
        self, connection: Any, dirty: list[int], rows: pa.Table, tag_rows: pa.Table
    ) -> None:
        """Replace the warehouse rows and tags of the `dirty` members, remove the merged-away
        ones among them, and move them between bitmaps."""
        held = held_bitmaps(connection, dirty)
        wanted = pa.array(dirty, pa.int64())
        live = rows.filter(pc.is_in(rows.column("member_id"), value_set=wanted))
        connection.register("_member_ids", pa.table({"member_id": wanted}))
        connection.register("_live_ids", live.select(["member_id"]))
        try:
            connection.execute(
                "DELETE FROM member_tags WHERE member_id IN (SELECT member_id FROM _member_ids)"
            )
            connection.execute(  # merged away: no row of their own any more
                "DELETE FROM members WHERE member_id IN (SELECT member_id FROM _member_ids) "
                "AND member_id NOT IN (SELECT member_id FROM _live_ids)"
            )
        finally:
            connection.unregister("_member_ids")
            connection.unregister("_live_ids")
        if live.num_rows:
            self._insert_arrow(connection, "members", live, "INSERT OR REPLACE")
        tags = tag_rows.filter(pc.is_in(tag_rows.column("member_id"), value_set=wanted))
        if tags.num_rows:
            self._insert_arrow(connection, "member_tags", tags, "INSERT")
        note_member_write(connection)
        apply_member_changes(connection, dirty, held=held)

    def _changed_members(self, connection: Any, rows: pa.Table) -> list[int]:
        """Members new to the warehouse or with a new `updated_at` (the overlap re-reads the
        unchanged ones; they must not count as touched)."""
        if not rows.num_rows:
            return []
        connection.register("_member_stamps", rows.select(["member_id", "updated_at"]))
        try:
            found = connection.execute(
                "SELECT s.member_id FROM _member_stamps s LEFT JOIN members m USING (member_id) "
                "WHERE m.member_id IS NULL OR m.updated_at IS DISTINCT FROM s.updated_at"
            ).fetchall()
        finally:
            connection.unregister("_member_stamps")
        return [int(row[0]) for row in found]

    # -- stores --------------------------------------------------------------------------

    def replace_stores(self) -> None:
        stores = list(self.session.execute(sa.select(Store).order_by(Store.code)).scalars())
        batch = pa.table(
            {
                "store_code": pa.array([s.code for s in stores], pa.string()),
                "name": pa.array([s.name for s in stores], pa.string()),
                "city": pa.array([s.city for s in stores], pa.string()),
                "region": pa.array([s.region for s in stores], pa.string()),
            }
        )
        with _warehouse_transaction(self.warehouse) as connection:
            connection.execute("DELETE FROM stores")
            if stores:
                self._insert_arrow(connection, "stores", batch, "INSERT")
        self.result.stores = len(stores)


_STORED_LINES = Source(
    "order_lines",
    (
        Column("id", "BIGINT"),
        Column("order_id", "VARCHAR"),
        Column("line_no", "INTEGER"),
        Column("member_id", "BIGINT"),
        Column("store_code", "VARCHAR"),
        Column("channel", "VARCHAR"),
        Column("paid_at", "TIMESTAMP"),
        Column("amount", "DECIMAL(14, 2)"),
        Column("status", "VARCHAR"),
        Column("category", "VARCHAR"),
        Column("sku", "VARCHAR"),
    ),
)


_STORED_MEMBER_COLUMNS = (
    Column("id", "BIGINT"),
    Column("merged_into_id", "BIGINT"),
    Column("gender", "VARCHAR"),
    Column("birthday", "DATE"),
    Column("registered_at", "TIMESTAMP"),
    Column("store_code", "VARCHAR"),
    Column("channel", "VARCHAR"),
    Column("name", "VARCHAR"),
    Column("erased_at", "TIMESTAMP"),
    Column("updated_at", "TIMESTAMP"),
)
_STORED_TAG_COLUMNS = (
    Column("member_id", "BIGINT"),
    Column(
        "tag",
        "VARCHAR",
        "(SELECT g.name || ':' || t.name FROM tags t JOIN tag_groups g ON g.id = t.group_id "
        "WHERE t.id = member_tags.tag_id)",
    ),
)


_STORED_EVENTS = Source(
    "events",
    (
        Column("id", "BIGINT"),
        Column("event_id", "VARCHAR"),
        Column("member_id", "BIGINT"),
        Column("type", "VARCHAR"),
        Column("occurred_at", "TIMESTAMP"),
        Column("properties", "VARCHAR"),
    ),
)


def _canonical_json(text: str | None) -> str:
    """An event's properties as the warehouse keeps them: sorted keys, unescaped text."""
    value = None if text is None else json.loads(text)
    return json.dumps(value or {}, ensure_ascii=False, sort_keys=True)


def _instant_literal(session: Session, instant: datetime) -> str:
    """`instant` as a SQL literal the store compares with its own UTC instants: SQLite keeps
    them as naive UTC text, PostgreSQL as timestamptz."""
    text = instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if session.get_bind().dialect.name == "sqlite":
        return f"'{text}'"
    return f"TIMESTAMPTZ '{text}+00:00'"


def _hour_offset(hour: datetime, tz: tzinfo) -> int | None:
    """Seconds east of UTC in `tz` throughout the naive-UTC `hour`, or None if it changes."""
    start = hour.replace(tzinfo=UTC)
    first = start.astimezone(tz).utcoffset()
    last = (start + timedelta(seconds=3599)).astimezone(tz).utcoffset()
    return int(first.total_seconds()) if first is not None and first == last else None


def _zone_table(
    connection: Any, tz: tzinfo, known: dict[datetime, int | None] | None = None
) -> pa.Table:
    """The business time zone's UTC offset for every UTC hour the staged lines fall in, by
    Python's zoneinfo (a line's business date is `paid_at.astimezone(tz).date()`). An hour with
    a transition inside it gets no offset; its lines get their dates one by one (`instant`
    rows)."""
    hours = [
        row[0]
        for row in connection.execute(
            "SELECT DISTINCT date_trunc('hour', paid_at) FROM _staged_lines"
        ).fetchall()
    ]
    rows: list[tuple[datetime, datetime | None, int | None, date | None]] = []
    irregular: list[datetime] = []
    for hour in hours:
        start = hour.replace(tzinfo=UTC)
        first = start.astimezone(tz).utcoffset()
        if (
            first is not None
            and first == (start + timedelta(seconds=3599)).astimezone(tz).utcoffset()
        ):
            rows.append((hour, None, int(first.total_seconds()), None))
        else:
            irregular.append(hour)
    if irregular:
        connection.register(
            "_irregular_hours", pa.table({"hour": pa.array(irregular, pa.timestamp("us"))})
        )
        try:
            instants = connection.execute(
                "SELECT DISTINCT paid_at FROM _staged_lines WHERE date_trunc('hour', paid_at) "
                "IN (SELECT hour FROM _irregular_hours)"
            ).fetchall()
        finally:
            connection.unregister("_irregular_hours")
        for (instant,) in instants:
            local = instant.replace(tzinfo=UTC).astimezone(tz).date()
            rows.append((instant, instant, None, local))
    return pa.table(
        {
            "hour": pa.array([r[0] for r in rows], pa.timestamp("us")),
            "instant": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "offset_seconds": pa.array([r[2] for r in rows], pa.int64()),
            "paid_date": pa.array([r[3] for r in rows], pa.date32()),
        }
    )


def _differing(
    connection: Any, rows: pa.Table, tag_rows: pa.Table, gone: Sequence[int]
) -> list[int]:
    """Members whose warehouse row or tags differ from `rows` / `tag_rows` (or are missing),
    and merged-away members the warehouse still holds. The sync re-reads a day of members on
    every run (MEMBER_OVERLAP); rewriting the unchanged ones, their tags and their bitmaps was
    most of a sync after a big import, so only these are written."""
    connection.register("_sync_members", rows)
    connection.register("_sync_tags", tag_rows)
    connection.register("_sync_gone", pa.table({"member_id": pa.array(gone, pa.int64())}))
    try:
        compared = " OR ".join(
            f"b.{column} IS DISTINCT FROM m.{column}"
            for column in rows.column_names
            if column != "member_id"
        )
        found = connection.execute(
            f"""WITH want AS (
                SELECT member_id, list(tag ORDER BY tag) AS tags FROM _sync_tags
                GROUP BY member_id),
            have AS (
                SELECT member_id, list(tag ORDER BY tag) AS tags FROM member_tags
                WHERE member_id IN (SELECT member_id FROM _sync_members)
                GROUP BY member_id)
            SELECT b.member_id FROM _sync_members b
            LEFT JOIN members m USING (member_id)
            LEFT JOIN want w USING (member_id)
            LEFT JOIN have h USING (member_id)
            WHERE m.member_id IS NULL OR {compared} OR w.tags IS DISTINCT FROM h.tags
            UNION
            SELECT member_id FROM _sync_gone
            WHERE member_id IN (SELECT member_id FROM members)
                OR member_id IN (SELECT member_id FROM member_tags)
            ORDER BY 1"""
        ).fetchall()
    finally:
        for name in ("_sync_members", "_sync_tags", "_sync_gone"):
            connection.unregister(name)
    return [int(row[0]) for row in found]


def _owner(owners: dict[int, int], member_id: int | None) -> int | None:
    return None if member_id is None else owners[member_id]


def _close_chains(mapping: dict[int, int]) -> dict[int, int]:
    """Resolve A→B, B→C inside one batch to A→C, B→C."""
    closed: dict[int, int] = {}
    for merged in mapping:
        target, seen = mapping[merged], {merged}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        closed[merged] = target
    return closed
