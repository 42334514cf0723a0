"""The shared starting point of every report: paid, non-refunded orders up to an as-of date.

Reports are written once, in DuckDB's SQL dialect, and parsed with SQLGlot so the segment
compiler can embed them and transpile them to ClickHouse. Every value inlined into the SQL
is a typed `date` or `int`, never user text, so inlining is safe.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def date_literal(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def end_of_day_utc_literal(day: date, tz: tzinfo) -> str:
    """The first instant after `day` in the business time zone, as a naive-UTC TIMESTAMP literal
    (warehouse instants are naive UTC)."""
    start_next = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    utc = start_next.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    return f"TIMESTAMP '{utc.isoformat(sep=' ')}'"


ORDERS_TABLES = ("orders", "order_totals")


def paid_orders_sql(*, as_of: date, orders_table: str = "orders") -> str:
    """One row per paid, non-refunded order on or before `as_of`, with `d` = whole days to it.
    `orders_table` is the `orders` view (re-groups order lines on every read) or the same rows
    materialised as `order_totals` (warehouse/order_totals.py) when the caller checked it is
    current."""
    if orders_table not in ORDERS_TABLES:
        raise ValueError(f"unknown orders table {orders_table!r}")
    as_of_sql = date_literal(as_of)
    return (
        "SELECT member_id, order_id, amount, paid_date, "
        f"DATE_DIFF('day', paid_date, {as_of_sql}) AS d "
        f"FROM {orders_table} WHERE NOT refunded AND paid_date <= {as_of_sql}"
    )
