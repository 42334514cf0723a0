"""The scale-out warehouse on ClickHouse: a server through clickhouse-connect, or chDB in-process.

Same tables as the DuckDB warehouse (`schema.py`), translated once: nullable columns become
`Nullable(...)`, instants `DateTime64(6)` (naive UTC), each table a `ReplacingMergeTree` ordered
by its primary key so a re-synced row replaces the old one. Every query runs with the setting
`final = 1`, so readers never see a replaced row twice before ClickHouse merges parts.

URLs: `clickhouse://user:password@host:8123/database` (a server) or `chdb:///abs/path` /
`chdb://` (in-process chDB, database `siyu`; chDB allows one data path per process).
`.query(sql, params)` takes ClickHouse SQL with `?` placeholders; the values are bound as
literals escaped by SQLGlot. Sessions run in UTC (`session_timezone`), so naive-UTC instants
loaded from Parquet and timestamp literals in compiled SQL mean the same instants.

Loading (ADR 0003): the warehouse sync writes DuckDB only; `export_to_clickhouse` copies every
warehouse table from DuckDB into ClickHouse (each table replaced whole, through Parquet files:
`file()` for chDB, `insert_arrow` for a server), including `sync_state` and `order_totals`, so
segments on ClickHouse read the same order totals as on DuckDB.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import sqlglot
from sqlglot import exp

from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.schema import DERIVED_TABLES, WAREHOUSE_TABLES, column_names

ORDERS_VIEW_CLICKHOUSE = """
CREATE OR REPLACE VIEW orders AS
SELECT
    order_id,
    any(member_id) AS member_id,
    min(paid_at) AS paid_at,
    min(paid_date) AS paid_date,
    sum(amount) AS amount,
    max(status = 'refunded') = 1 AS refunded,
    any(store_code) AS store_code,
    any(channel) AS channel,
    arraySort(groupUniqArray(category)) AS categories
FROM order_lines
GROUP BY order_id
"""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Backend(Protocol):
    def execute(self, sql: str) -> list[tuple[Any, ...]]: ...

    def load_parquet(self, table: str, columns: Sequence[str], path: Path) -> None: ...

    def close(self) -> None: ...


class _ChdbBackend:
    """chDB in-process; each connection is a session whose current database is ours."""

    def __init__(self, path: str, database: str) -> None:
        import chdb

        self._connection = chdb.connect(path)  # type: ignore[no-untyped-call]
        self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.execute(f"USE {database}")
        self.execute("SET final = 1")
        self.execute("SET session_timezone = 'UTC'")

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall() or [])
        finally:
            cursor.close()

    def load_parquet(self, table: str, columns: Sequence[str], path: Path) -> None:
        names = ", ".join(columns)
        source = exp.Literal.string(str(path)).sql(dialect="clickhouse")
        self.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM file({source}, Parquet)")

    def close(self) -> None:
        self._connection.close()


class _ServerBackend:
    def __init__(self, url: str) -> None:
        import clickhouse_connect

        parsed = urlparse(url)
        database = (parsed.path or "/").strip("/") or "default"
        admin = clickhouse_connect.get_client(
            host=parsed.hostname or "localhost",
            port=parsed.port or 8123,
            username=parsed.username or "default",
            password=parsed.password or "",
        )
        admin.command(f"CREATE DATABASE IF NOT EXISTS {_checked(database)}")
        admin.close()
        self._client = clickhouse_connect.get_client(
            host=parsed.hostname or "localhost",
            port=parsed.port or 8123,
            username=parsed.username or "default",
            password=parsed.password or "",
            database=database,
            settings={"final": 1, "session_timezone": "UTC"},
        )

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        result = self._client.query(sql)
        return [tuple(row) for row in result.result_rows]

    def load_parquet(self, table: str, columns: Sequence[str], path: Path) -> None:
        import pyarrow.parquet as pa_parquet

        self._client.insert_arrow(table, pa_parquet.read_table(path, columns=list(columns)))

    def close(self) -> None:
        self._client.close()


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a ClickHouse identifier: {name!r}")
    return name


class ClickHouseWarehouse:
    dialect = "clickhouse"

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self.ensure_schema()

    @classmethod
    def from_url(cls, url: str) -> ClickHouseWarehouse:
        if url.startswith("clickhouse://"):
            return cls(_ServerBackend(url))
        if url.startswith("chdb://"):
            # chdb:///abs/path, chdb://relative/path, or chdb:// (in memory); the database is
            # always `siyu`, so a persistent path is found again by the next process.
            path = url.removeprefix("chdb://") or ":memory:"
            return cls.in_process(path=path, database="siyu")
        raise ValueError(f"not a ClickHouse URL: {url}")

    @classmethod
    def in_process(
        cls, *, path: str = ":memory:", database: str | None = None
    ) -> ClickHouseWarehouse:
        """A chDB warehouse; without a database name each instance gets a fresh one."""
        name = _checked(database or f"siyu_{uuid.uuid4().hex[:12]}")
        return cls(_ChdbBackend(path, name))

    def ensure_schema(self) -> None:
        for table in DERIVED_TABLES:
            existing = self._backend.execute(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                f"AND table = '{_checked(table)}' ORDER BY position"
            )
            if existing and [row[0] for row in existing] != column_names(table):
                # An older shape: the next export replaces it whole anyway.
                self._backend.execute(f"DROP TABLE {table}")
        for table, columns in WAREHOUSE_TABLES.items():
            self._backend.execute(clickhouse_table_ddl(table, columns))
        self._backend.execute(ORDERS_VIEW_CLICKHOUSE)

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._backend.execute(bind(sql, parameters) if parameters else sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Append rows (the sync and tests use it); values become escaped literals."""
        if not rows:
            return
        values = exp.values([tuple(_literal(v) for v in row) for row in rows])
        target = exp.Schema(
            this=exp.to_table(_checked(table)),
            expressions=[exp.to_identifier(_checked(c)) for c in columns],
        )
        statement = exp.Insert(this=target, expression=values)
        self._backend.execute(statement.sql(dialect="clickhouse"))

    def load_parquet(self, table: str, columns: Sequence[str], path: Path) -> None:
        """Append the rows of a Parquet file (column names as in the warehouse schema)."""
        self._backend.load_parquet(_checked(table), [_checked(c) for c in columns], path)

    def close(self) -> None:
        self._backend.close()


def export_to_clickhouse(
    *, source: DuckDBWarehouse, target: ClickHouseWarehouse, scratch: Path
) -> dict[str, int]:
    """Replace every warehouse table in ClickHouse by its DuckDB rows; returns rows per table.

    `sync_state` goes last, so a reader that sees the new `order_totals` guard also sees the
    order lines it covers (until then the guard fails and segments read the view)."""
    scratch.mkdir(parents=True, exist_ok=True)
    copied: dict[str, int] = {}
    tables = [t for t in WAREHOUSE_TABLES if t != "sync_state"] + ["sync_state"]
    for table in tables:
        columns = column_names(table)
        path = scratch / f"{table}.parquet"
        select = f"SELECT {', '.join(columns)} FROM {table}"
        source.connection.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
        target.query(f"TRUNCATE TABLE {table}")
        copied[table] = int(source.query(f"SELECT count(*) FROM {table}")[0][0])
        if copied[table]:
            target.load_parquet(table, columns, path)
        path.unlink()
    return copied


def clickhouse_table_ddl(table: str, columns: str) -> str:
    """Translate one table of `schema.py` (DuckDB DDL) to a ClickHouse ReplacingMergeTree."""
    parsed = sqlglot.parse_one(f"CREATE TABLE {table} ({columns})", read="duckdb")
    assert isinstance(parsed.this, exp.Schema)
    definitions, key = [], []
    for item in parsed.this.expressions:
        if isinstance(item, exp.PrimaryKey):
            key = [part.name for part in item.expressions]
            continue
        assert isinstance(item, exp.ColumnDef)
        constraints = {type(c.kind) for c in item.constraints}
        if exp.PrimaryKeyColumnConstraint in constraints:
            key = [item.name]
        required = constraints & {exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint}
        definitions.append(f"{item.name} {_column_type(item, nullable=not required)}")
    order_by = ", ".join(key) if key else "tuple()"
    return (
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(definitions)}) "
        f"ENGINE = ReplacingMergeTree ORDER BY ({order_by})"
    )


def _column_type(column: exp.ColumnDef, *, nullable: bool) -> str:
    kind = column.args["kind"]
    assert isinstance(kind, exp.DataType)
    if kind.is_type("array"):
        # ClickHouse arrays cannot be Nullable; their elements are never NULL here.
        (element,) = kind.expressions
        inner = exp.ColumnDef(this=column.this, kind=element)
        return f"Array({_column_type(inner, nullable=False)})"
    if kind.is_type("timestamp", "timestampntz", "datetime"):
        rendered = "DateTime64(6)"
    elif kind.is_type("date"):
        rendered = "Date32"  # birthdays before 1970 need the wide date type
    else:
        rendered = kind.sql(dialect="clickhouse")
        rendered = (
            rendered.removeprefix("Nullable(").removesuffix(")")
            if rendered.startswith("Nullable(")
            else rendered
        )
    return f"Nullable({rendered})" if nullable else rendered


def bind(sql: str, parameters: Sequence[Any]) -> str:
    """Replace `?` placeholders, in order, by SQLGlot-escaped literals."""
    values = iter(parameters)
    tree = sqlglot.parse_one(sql, read="clickhouse")

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            return _literal(next(values))
        return node

    return tree.transform(substitute).sql(dialect="clickhouse")


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, Decimal):
        return exp.Literal.number(format(value, "f"))
    if isinstance(value, datetime):
        return exp.Literal.string(value.replace(tzinfo=None).isoformat(sep=" "))
    if isinstance(value, date):
        return exp.Literal.string(value.isoformat())
    return exp.Literal.string(str(value))
