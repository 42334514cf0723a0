"""Segment test data: a `Dataset` loaded into DuckDB or chDB warehouses, and named personas."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from siyu.segments.reference import Dataset
from siyu.warehouse.clickhouse import ClickHouseWarehouse
from siyu.warehouse.duckdb import DuckDBWarehouse

Warehouse = DuckDBWarehouse | ClickHouseWarehouse


def load(warehouse: Warehouse, data: Dataset) -> None:
    """Insert every row of the dataset into the warehouse tables of the same names."""
    for table in fields(Dataset):
        rows: list[dict[str, Any]] = getattr(data, table.name)
        if not rows:
            continue
        columns = sorted({key for row in rows for key in row})
        values = [tuple(row.get(c) for c in columns) for row in rows]
        if isinstance(warehouse, ClickHouseWarehouse):
            warehouse.insert(table.name, columns, values)
        else:
            marks = ", ".join("?" for _ in columns)
            warehouse.connection.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", values
            )


def member(member_id: int, **attrs: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "member_id": member_id,
        "gender": "U",
        "birthday": None,
        "registered_at": datetime(2025, 1, 1),
        "store_code": "SH001",
        "channel": "pos",
        "name": f"member {member_id}",
    }
    row.update(attrs)
    return row


def order_line(
    order_id: str,
    member_id: int,
    paid_at: datetime,
    amount: str,
    *,
    line_no: int = 1,
    status: str = "paid",
    category: str | None = "tea",
    sku: str | None = None,
    store_code: str | None = "SH001",
    paid_date: date | None = None,
) -> dict[str, Any]:
    """An order line; `paid_at` is naive UTC and `paid_date` its Shanghai date by default."""
    from datetime import timedelta

    return {
        "line_key": f"{order_id}:{line_no}",
        "order_id": order_id,
        "line_no": line_no,
        "member_id": member_id,
        "store_code": store_code,
        "channel": "pos",
        "paid_at": paid_at,
        "paid_date": paid_date or (paid_at + timedelta(hours=8)).date(),
        "amount": Decimal(amount),
        "status": status,
        "category": category,
        "sku": sku,
    }
