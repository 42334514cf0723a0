"""Bulk reads out of the operational store into a DuckDB table, with no Python object per row.

The full OneID rebuild and the warehouse sync read millions of rows; fetching them as tuples
costs 1-3 µs a row and a datetime or Decimal object per field, the bulk of either job. Here:

- SQLite builds each block of rows into one CSV text itself (`printf('%Q,…')` and
  `group_concat`), which DuckDB parses. Values are single-quoted with their quotes doubled, so
  any text round-trips (line breaks, commas); NULL is the bare word NULL.
- PostgreSQL writes CSV with `COPY … TO STDOUT` (same NULL convention); Python only moves bytes.
- Any other driver: the DB-API cursor's rows, one Arrow block at a time.

Instants leave the store as naive UTC text (how SQLite keeps them; PostgreSQL converts with
`AT TIME ZONE 'UTC'`), so a TIMESTAMP column here is UTC. With a `limit`, the rows are the
first ones past `after_id` in id order, so a copy can resume after the last id it saw.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

BLOCK = 200_000  # rows per SQLite block (one text of ~10-30 MB)


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
