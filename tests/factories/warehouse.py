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


def seeded_brand(
    warehouse: DuckDBWarehouse, *, seed: int, members: int = 300, until: date = date(2026, 6, 18)
) -> tuple[dict[int, datetime | None], list[tuple[str, int, date, Decimal, str]]]:
    """A small Demo Tea brand: members joining over three years, repeat buyers, multi-line
    baskets, ~3% refunded orders (some by a refund row), orders of members with no member row,
    orders after `until`. Returns what was written, for reference implementations."""
    import random

    rng = random.Random(seed)
    start = until - timedelta(days=3 * 365)
    member_rows: dict[int, datetime | None] = {}
    lines: list[Line] = []
    for member_id in range(1, members + 1):
        joined = start + timedelta(days=rng.randrange(3 * 365 + 30))
        if rng.random() < 0.9:  # the rest have orders but no member row
            registered = None if rng.random() < 0.05 else joined
            add_member(warehouse, member_id, registered=registered or joined)
            if registered is None:
                warehouse.connection.execute(
                    "UPDATE members SET registered_at = NULL WHERE member_id = ?", [member_id]
                )
            member_rows[member_id] = (
                None if registered is None else datetime.combine(registered, time(2, 0))
            )
        day = joined
        for n in range(rng.choice([0, 1, 1, 2, 3, 5, 8])):
            day = day + timedelta(days=rng.choice([0, 1, 7, 30, 45, 89, 90, 120, 364, 365]))
            order_id = f"O{member_id}-{n}"
            for line_no in range(1, rng.choice([1, 1, 2, 3]) + 1):
                amount = Decimal(rng.randrange(100, 50_000)) / 100
                lines.append(Line(order_id, member_id, day, amount, line_no=line_no))
            if rng.random() < 0.03:
                lines.append(
                    Line(order_id, member_id, day, Decimal(0), line_no=9, status="refunded")
                )
    add_lines(warehouse, lines)
    plain = [(ln.order_id, ln.member_id, ln.paid_date, ln.amount, ln.status) for ln in lines]
    return member_rows, plain
