"""The embedded warehouse on a DuckDB file.

A DuckDB file has one writing process at a time: the process that opens it first (normally
`siyu serve`) owns it, and a second process gets `WarehouseBusyError` with advice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from siyu.warehouse.order_totals import GUARD
from siyu.warehouse.schema import DERIVED_TABLES, ORDERS_VIEW, WAREHOUSE_TABLES, column_names


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse file."""


class DuckDBWarehouse:
    dialect = "duckdb"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._connection: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def from_url(cls, url: str) -> DuckDBWarehouse:
        if not url.startswith("duckdb://"):
            raise ValueError(f"not a DuckDB URL: {url}")
        path = url.removeprefix("duckdb:///") if url.startswith("duckdb:///") else ":memory:"
        if url in ("duckdb://", "duckdb:///:memory:"):
            path = ":memory:"
        return cls(path)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._connection = duckdb.connect(self.path)
            except duckdb.IOException as error:
                raise WarehouseBusyError(
                    f"the warehouse {self.path} is open in another process (is `siyu serve` "
                    "running?). Stop it, or send the work through its HTTP API."
                ) from error
            self.ensure_schema()
        return self._connection

    def ensure_schema(self) -> None:
        connection = self.connection
        for table in DERIVED_TABLES:
            existing = connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                [table],
            ).fetchall()
            if existing and [row[0] for row in existing] != column_names(table):
                # An older shape: drop it and fail the guard, so the next sync rebuilds it.
                connection.execute(f"DROP TABLE {table}")
                connection.execute("DELETE FROM sync_state WHERE name = ?", [GUARD])
        for table, columns in WAREHOUSE_TABLES.items():
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
        connection.execute(ORDERS_VIEW)

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql, parameters or []).fetchall()

    def first_column(self, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        """A query's first column as one NumPy array: millions of member ids without a Python
        object each (segment bitmaps are built from it)."""
        result = self.connection.execute(sql, parameters or []).fetchnumpy()
        return next(iter(result.values()))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
