"""Warehouse rows for report tests: orders as the sync would leave them (Demo Tea's shop)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from siyu.warehouse.duckdb import DuckDBWarehouse


@dataclass(frozen=True)
class Line:
    order_id: str
    member_id: int
    paid_date: date
    amount: Decimal
    line_no: int = 1
    status: str = "paid"
    category: str | None = "tea"
    store_code: str | None = "SH001"


def add_member(
    warehouse: DuckDBWarehouse, member_id: int, *, registered: date = date(2024, 1, 1)
) -> None:
    registered_at = datetime.combine(registered, time(2, 0))
    warehouse.connection.execute(
        "INSERT INTO members (member_id, name, registered_at, store_code) VALUES (?, ?, ?, ?)",
        [member_id, f"member {member_id}", registered_at, "SH001"],
    )


def add_lines(warehouse: DuckDBWarehouse, lines: list[Line]) -> None:
    warehouse.connection.executemany(
        "INSERT INTO order_lines (line_key, order_id, line_no, member_id, store_code, channel,"
        " paid_at, paid_date, amount, status, category, sku)"
        " VALUES (?, ?, ?, ?, ?, 'pos', ?, ?, ?, ?, ?, NULL)",
        [
            [
                f"{line.order_id}:{line.line_no}",
                line.order_id,
                line.line_no,
                line.member_id,
                line.store_code,
                # 10:00 Shanghai = 02:00 UTC, the same business date.
                datetime.combine(line.paid_date, time(2, 0)),
                line.paid_date,
                line.amount,
                line.status,
                line.category,
            ]
            for line in lines
        ],
    )


def days_before(as_of: date, days: int) -> date:
    return as_of - timedelta(days=days)
