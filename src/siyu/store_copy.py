"""Bulk reads out of the operational store into a DuckDB table, with no Python object per row.

The full OneID rebuild and the warehouse sync read millions of rows; fetching them as tuples
costs 1-3 µs a row and a datetime or Decimal object per field, the bulk of either job. Here:

- SQLite builds each block of rows into one CSV text itself (`printf('%Q,…')` and
  `group_concat`), which DuckDB parses. Values are single-quoted with their quotes doubled, so
  any text round-trips (line breaks, commas); NULL is the bare word NULL.
- PostgreSQL writes CSV with `COPY … TO STDOUT` (same NULL convention); Python only moves bytes.
- Any other driver: the DB-API cursor's rows, one Arrow block at a time.

`read_for_update` reads several whole tables for a caller that then writes what it decided
(the full OneID rebuild). On an SQLite file the session first takes the write lock, so no other
writer can commit until it ends and a second connection reads exactly what the session would;
ADBC connections then read the file straight into Arrow, several pieces of a table at a time,
~3-5x faster than the CSV path (which it falls back to elsewhere).

Instants leave the store as naive UTC text (how SQLite keeps them; PostgreSQL converts with
`AT TIME ZONE 'UTC'`), so a TIMESTAMP column here is UTC. With a `limit`, the rows are the
first ones past `after_id` in id order, so a copy can resume after the last id it saw.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

BLOCK = 200_000  # rows per SQLite block (one text of ~10-30 MB)
RANGE = 2_000_000  # rows per ADBC read: small enough to spread a table over the workers


@dataclass(frozen=True)
class Column:
    """One column to copy: its DuckDB type and the store's SQL for it (default: its name)."""

    name: str
    type: str  # VARCHAR, BIGINT, INTEGER, TINYINT, DATE, TIMESTAMP, DECIMAL(p, s)
    sql: str | None = None

    @property
    def expression(self) -> str:
        return self.sql or self.name


@dataclass(frozen=True)
class Source:
    """Rows of one store table (`where` filters). `key` orders and resumes a copy: a unique
    integer column; `rowid` for a table without one (SQLite's; elsewhere such a table can only
    be copied whole, with no `limit` or `after_id`)."""

    table: str
    columns: Sequence[Column]
    where: str = "TRUE"
    key: str = "id"
    # `read_for_update` only: the order rows come in (of columns copied), and a NOT NULL column
    # (ideally an index's first) whose values cut the read in pieces (None: one piece)
    order_by: str | None = None
    ranges: str | None = None


def create_target(duck: duckdb.DuckDBPyConnection, target: str, source: Source) -> None:
    columns = ", ".join(f"{c.name} {c.type}" for c in source.columns)
    duck.execute(f"CREATE OR REPLACE TEMP TABLE {target} ({columns})")


def copy_rows(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: Source,
    target: str,
    *,
    after_id: int | None = None,
    limit: int | None = None,
) -> int:
    """Append the source's rows with id > `after_id` (at most `limit`, in id order) to the
    DuckDB table `target`, whose columns are the source's; the number of rows copied."""
    driver = session.get_bind().dialect.driver
    if driver == "pysqlite":
        return _copy_sqlite(session, duck, source, target, after_id, limit)
    if driver == "psycopg":  # psycopg 3: COPY, no row objects
        return _copy_postgres(session, duck, source, target, after_id, limit)
    return _copy_tuples(session, duck, source, target, after_id, limit)


def _select(source: Source, fields: str, after_id: int | None, limit: int | None) -> str:
    after = "" if after_id is None else f" AND {source.key} > {int(after_id)}"
    # Order only matters when a limit cuts the rows: a whole-table copy skips the sort.
    cap = "" if limit is None else f" ORDER BY {source.key} LIMIT {int(limit)}"
    return f"SELECT {fields} FROM {source.table} WHERE ({source.where}){after}{cap}"


def _read_csv(
    duck: duckdb.DuckDBPyConnection, path: Path, source: Source, target: str, *, quote: str
) -> None:
    types = ", ".join(f"'{c.name}': '{c.type}'" for c in source.columns)
    # SQLite writes NULL as the bare word NULL; PostgreSQL as an empty unquoted field.
    null = "NULL" if quote == "'" else ""
    duck.execute(
        f"INSERT INTO {target} SELECT * FROM read_csv(?, header = false, delim = ',', "
        f"quote = ?, escape = ?, nullstr = ?, allow_quoted_nulls = false, strict_mode = true, "
        f"columns = {{{types}}})",
        [str(path), quote, quote, null],
    )


def _copy_sqlite(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: Source,
    target: str,
    after_id: int | None,
    limit: int | None,
) -> int:
    # printf's %Q quotes a value in single quotes (doubling any inside) and writes NULL as
    # NULL: one C call per row, about twice as fast as building the line with || and replace().
    formats = ",".join("%Q" for _ in source.columns)
    line = f"printf('{formats}', {', '.join(c.expression for c in source.columns)})"
    cursor = session.connection().connection.cursor()
    copied, last = 0, -(2**63) if after_id is None else after_id
    try:
        with tempfile.TemporaryDirectory(prefix="siyu-copy-") as folder:
            path = Path(folder) / f"{target}.csv"
            while limit is None or copied < limit:
                block = BLOCK if limit is None else min(BLOCK, limit - copied)
                inner = _select(source, f"{source.key} AS id, {line} AS line", last, block)
                statement = f"SELECT max(id), count(*), group_concat(line, char(10)) FROM ({inner})"
                top, count, text = cursor.execute(statement).fetchall()[0]
                if top is None:
                    break
                path.write_text(text + "\n", encoding="utf-8")
                _read_csv(duck, path, source, target, quote="'")
                copied, last = copied + count, top
                if count < block:
                    break
    finally:
        cursor.close()
    return copied


def _postgres_field(column: Column) -> str:
    if column.type == "TIMESTAMP":
        return f"({column.expression} AT TIME ZONE 'UTC')"
    return column.expression


def _copy_postgres(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: Source,
    target: str,
    after_id: int | None,
    limit: int | None,
) -> int:
    fields = ", ".join(_postgres_field(c) for c in source.columns)
    sql = _select(source, fields, after_id, limit)
    before = _count(duck, target)
    with tempfile.TemporaryDirectory(prefix="siyu-copy-") as folder:
        path = Path(folder) / f"{target}.csv"
        cursor = session.connection().connection.cursor()
        try:
            with (
                path.open("wb") as sink,
                cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                for data in copy:
                    sink.write(data)
        finally:
            cursor.close()
        if path.stat().st_size:  # an empty file has nothing for the reader
            _read_csv(duck, path, source, target, quote='"')
    return _count(duck, target) - before


def _copy_tuples(
    session: Session,
    duck: duckdb.DuckDBPyConnection,
    source: Source,
    target: str,
    after_id: int | None,
    limit: int | None,
) -> int:
    fields = ", ".join(c.expression for c in source.columns)
    cursor = session.connection().connection.cursor()
    copied = 0
    try:
        cursor.execute(_select(source, fields, after_id, limit))
        while rows := cursor.fetchmany(BLOCK):
            columns = list(zip(*rows, strict=True))
            block = pa.table(  # noqa: F841 — read by DuckDB
                {
                    c.name: pa.array(_naive_utc(values) if c.type == "TIMESTAMP" else values)
                    for c, values in zip(source.columns, columns, strict=True)
                }
            )
            casts = ", ".join(f"CAST({c.name} AS {c.type})" for c in source.columns)
            duck.execute(f"INSERT INTO {target} SELECT {casts} FROM block")
            copied += len(rows)
    finally:
        cursor.close()
    return copied


def _count(duck: duckdb.DuckDBPyConnection, target: str) -> int:
    return int(duck.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0])


def _naive_utc(values: Sequence[Any]) -> list[Any]:
    return [
        v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
        for v in values
    ]


def read_for_update(
    session: Session,
    sources: Sequence[Source],
    *,
    reshape: Mapping[int, Callable[[pa.Table], pa.Table]] | None = None,
    workers: int = 8,
) -> list[pa.Table]:
    """Each whole source as one Arrow table, as the session's transaction sees it, leaving the
    session holding the store's write lock on SQLite. A source with `order_by` comes in that
    order; a source's `ranges` column cuts its read into pieces.

    On an SQLite file whose session has nothing pending, `BEGIN IMMEDIATE` takes the write lock
    first; read-only ADBC connections then read the file into Arrow, `workers` reads at a time
    (the driver releases the GIL; eight on two cores: a store larger than memory keeps readers
    waiting on the disk, and more of them keep it busier — 10M members, nothing cached: 47-51 s
    with eight, 56-73 s with four; all cached: 23 s), a source with `ranges` in pieces of about
    `RANGE` rows. The driver types a column by its first rows, so every column's SQL there must
    be non-NULL (coalesce it). Elsewhere each source goes through
    `copy_rows` into a scratch DuckDB. `reshape[n]` maps each piece of source n as it is read
    (on the reading thread), so work per piece overlaps the reads."""
    shapes = reshape or {}
    path = _sqlite_file(session)
    if path is None or not _lock_for_update(session):
        tables = [_read_through_session(session, source) for source in sources]
        return [shapes.get(n, _same)(table) for n, table in enumerate(tables)]
    reads = [
        (number, piece, bounds)
        for number, source in enumerate(sources)
        for piece, bounds in enumerate(_pieces(session, source))
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tables = list(
            pool.map(
                lambda read: shapes.get(read[0], _same)(
                    _adbc_read(path, sources[read[0]], *read[2])
                ),
                reads,
            )
        )
    # `reads` (and so `tables`) go source by source, each source's pieces in order.
    return [
        pa.concat_tables(
            [table for (n, _, _), table in zip(reads, tables, strict=True) if n == number]
        )
        for number in range(len(sources))
    ]


def _same(table: pa.Table) -> pa.Table:
    return table


def _read_through_session(session: Session, source: Source) -> pa.Table:
    duck = duckdb.connect()
    try:
        create_target(duck, "copied", source)
        copy_rows(session, duck, source, "copied")
        order = f" ORDER BY {source.order_by}" if source.order_by else ""
        return duck.sql(f"SELECT * FROM copied{order}").to_arrow_table()
    finally:
        duck.close()


def _sqlite_file(session: Session) -> Path | None:
    url = session.get_bind().engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def _lock_for_update(session: Session) -> bool:
    """Take SQLite's write lock; False when the session already wrote (another connection
    could not see those rows)."""
    connection = session.connection().connection.driver_connection
    if connection is None or connection.in_transaction:
        return False
    connection.execute("BEGIN IMMEDIATE")
    return True


Bound = Any  # a value of a source's `ranges` column, or None: no bound


def _pieces(session: Session, source: Source) -> list[tuple[Bound, Bound]]:
    """[lower, upper) bounds on the source's `ranges` column that cut it into pieces of about
    `RANGE` rows: the column's values at evenly spaced keys (a look-up each), so they follow
    how the values are spread. Adjacent pieces share a bound: every row is in exactly one."""
    if source.ranges is None:
        return [(None, None)]
    cursor = session.connection().connection.cursor()
    try:
        # Two statements: SQLite answers a lone min() or max() from an index's end, but scans
        # for both at once.
        (first,), (last,) = (
            cursor.execute(f"SELECT {end}({source.key}) FROM {source.table}").fetchall()[0]
            for end in ("min", "max")
        )
        if first is None:
            return [(None, None)]
        count = -(-(int(last) - int(first) + 1) // RANGE)
        probe = (
            f"SELECT {source.ranges} FROM {source.table} WHERE {source.key} >= ? "
            f"ORDER BY {source.key} LIMIT 1"
        )
        cuts = sorted(
            {
                cursor.execute(
                    probe, [int(first) + n * (int(last) - int(first)) // count]
                ).fetchall()[0][0]
                for n in range(1, count)
            }
        )
    finally:
        cursor.close()
    bounds = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def _adbc_read(path: Path, source: Source, low: Bound, high: Bound) -> pa.Table:
    import adbc_driver_sqlite.dbapi as adbc  # only this path needs the driver

    fields = ", ".join(f"{c.expression} AS {c.name}" for c in source.columns)
    bounds = [
        (operator, bound) for operator, bound in ((">=", low), ("<", high)) if bound is not None
    ]
    cut = "".join(f" AND {source.ranges} {operator} ?" for operator, _ in bounds)
    order = f" ORDER BY {source.order_by}" if source.order_by else ""
    sql = f"SELECT {fields} FROM {source.table} WHERE ({source.where}){cut}{order}"
    with adbc.connect(f"{path.as_uri()}?mode=ro") as connection:
        cursor = connection.cursor()
        try:
            # Two readers opening a WAL file at once can find its read marks busy for a moment.
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.fetchall()
            # Arrow batches of 64k rows, not the driver's 1k: fewer chunks for every later step.
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
            cursor.execute(sql, [bound for _, bound in bounds] or None)
            return cursor.fetch_arrow_table()
        finally:
            cursor.close()
