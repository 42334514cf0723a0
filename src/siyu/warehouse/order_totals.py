"""`order_totals`: the `orders` view materialised, one row per order, kept by the warehouse sync.

The `orders` view groups every order line by order id on each read; at a million lines that
costs ~0.6 s per segment condition and at 50M lines tens of seconds, so segments read this
table instead. It has the view's columns exactly, and the sync keeps it exact:
- each batch of copied order lines re-totals its orders in the batch's own transaction;
- merges remap its `member_id` with the other member-keyed tables;
- `ensure_order_totals` (end of every sync) rebuilds it whole if the guard fails.

The guard: `sync_state` row `order_totals` holds the number of order lines the totals cover.
Readers use the table only while that number equals `count(*)` of `order_lines` and fall back
to the view otherwise, so rows written into `order_lines` outside the sync (tests, benchmarks,
a hand repair) can never give a stale answer, only a slower one until the next sync or
`rebuild_order_totals`. Writers that change lines in place without changing their number must
call `rebuild_order_totals` (the sync's merge remapping is the only such writer and keeps the
table in step itself).

`member_order_stats` summarises `order_totals` per member (paid, non-refunded orders: how many,
the last paid date and the dates of the newest `RECENT_PAID_DATES`) and is kept in the same
places, under the same guard. Lifecycle segments read it instead of grouping every order
(4-6 s at 10M members): as of a date on or after the newest paid date it holds every number
the lifecycle stages need (`analytics/lifecycle.py`); before that date readers use the orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import pyarrow as pa

from siyu.warehouse.schema import orders_select

GUARD = "order_totals"
COLUMNS = (
    *("order_id", "member_id", "paid_at", "paid_date"),
    *("amount", "refunded", "store_code", "channel", "categories"),
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM orders"
STATS = "member_order_stats"
STATS_COLUMNS = ("member_id", "orders_ever", "last_paid_date", "recent_paid_dates")
# Enough newest paid dates for any `mature_orders` threshold up to this many orders.
RECENT_PAID_DATES = 16
_STATS_AGGREGATES = {
    "duckdb": f"max(paid_date, {RECENT_PAID_DATES})",
    "clickhouse": f"arraySlice(arrayReverseSort(groupArray(paid_date)), 1, {RECENT_PAID_DATES})",
}


def _stats_select(dialect: str, where: str = "TRUE") -> str:
    return (
        f"SELECT member_id, CAST(count(*) AS INTEGER), max(paid_date), "
        f"{_STATS_AGGREGATES[dialect]} FROM order_totals "
        f"WHERE NOT refunded AND ({where}) GROUP BY member_id"
    )


@dataclass(frozen=True)
class MemberOrderStats:
    """`member_order_stats` is current; `latest_paid_date` is its newest paid date."""

    latest_paid_date: date | None

    def cover(self, as_of: date) -> bool:
        """Whether it answers as of `as_of`: no paid order it counts is dated after it."""
        return self.latest_paid_date is None or self.latest_paid_date <= as_of


class Warehouse(Protocol):
    dialect: str

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...


_GUARD_SQL = (
    "SELECT (SELECT count(*) FROM order_lines), "
    f"(SELECT max(watermark) FROM sync_state WHERE name = '{GUARD}')"
)


def _covers(lines: Any, covered: Any) -> bool:
    return covered is not None and int(lines) == int(covered)


def order_totals_current(warehouse: Warehouse) -> bool:
    """Whether `order_totals` covers exactly the order lines in the warehouse now."""
    return _covers(*warehouse.query(_GUARD_SQL)[0])


def member_order_stats(warehouse: Warehouse) -> MemberOrderStats | None:
    """The member summary when it is current (see the module docstring), else None; the guard
    and the newest paid date in one round trip (every segment preview asks)."""
    lines, covered, latest = warehouse.query(
        f"{_GUARD_SQL}, (SELECT max(last_paid_date) FROM {STATS})"
    )[0]
    return MemberOrderStats(latest_paid_date=latest) if _covers(lines, covered) else None


def rebuild_order_totals(warehouse: Warehouse) -> int:
    """Recompute every order's totals from its lines, and the member summary from them;
    returns the number of orders."""
    lines = int(warehouse.query("SELECT count(*) FROM order_lines")[0][0])
    warehouse.query("TRUNCATE TABLE order_totals")
    warehouse.query(f"INSERT INTO order_totals ({', '.join(COLUMNS)}) {_SELECT}")
    warehouse.query(f"TRUNCATE TABLE {STATS}")
    warehouse.query(
        f"INSERT INTO {STATS} ({', '.join(STATS_COLUMNS)}) {_stats_select(warehouse.dialect)}"
    )
    _set_guard(warehouse, lines)
    return int(warehouse.query("SELECT count(*) FROM order_totals")[0][0])


def ensure_order_totals(warehouse: Warehouse) -> bool:
    """Rebuild the totals when the guard fails; returns whether a rebuild ran."""
    if order_totals_current(warehouse):
        return False
    rebuild_order_totals(warehouse)
    return True


def retotal_orders(connection: Any, order_ids: Iterable[str], *, lines_before: int) -> None:
    """Inside the DuckDB transaction that appended lines: re-total their orders, re-summarise
    their members and move the guard, but only if the totals were current before the batch
    (else the end-of-sync rebuild does it)."""
    guard = connection.execute(
        f"SELECT max(watermark) FROM sync_state WHERE name = '{GUARD}'"
    ).fetchall()[0][0]
    if guard is None or int(guard) != lines_before:
        return
    batch = pa.table({"order_id": pa.array(sorted(set(order_ids)), pa.string())})
    connection.register("_retotal", batch)
    try:
        connection.execute(
            "DELETE FROM order_totals WHERE order_id IN (SELECT order_id FROM _retotal)"
        )
        # The batch's lines are filtered before grouping (through the view, DuckDB groups
        # every line first: ~15 s a batch at 50M lines).
        lines = orders_select("order_id IN (SELECT order_id FROM _retotal)")
        members = connection.execute(
            f"INSERT INTO order_totals ({', '.join(COLUMNS)}) {lines} RETURNING member_id"
        ).fetchall()
    finally:
        connection.unregister("_retotal")
    restat_members(connection, [row[0] for row in members])
    connection.execute(
        "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES (?, ?)",
        [GUARD, count_lines(connection)],
    )


def restat_members(connection: Any, member_ids: Iterable[int]) -> None:
    """Inside a DuckDB transaction: recompute these members' rows of the member summary from
    `order_totals` (a member left with no paid order loses their row)."""
    batch = pa.table({"member_id": pa.array(sorted(set(member_ids)), pa.int64())})
    if not batch.num_rows:
        return
    connection.register("_restat", batch)
    try:
        connection.execute(
            f"DELETE FROM {STATS} WHERE member_id IN (SELECT member_id FROM _restat)"
        )
        where = "member_id IN (SELECT member_id FROM _restat)"
        connection.execute(
            f"INSERT INTO {STATS} ({', '.join(STATS_COLUMNS)}) {_stats_select('duckdb', where)}"
        )
    finally:
        connection.unregister("_restat")


def count_lines(connection: Any) -> int:
    # fetchall: DuckDB refuses the next statement while a result is only partly fetched.
    return int(connection.execute("SELECT count(*) FROM order_lines").fetchall()[0][0])


def _set_guard(warehouse: Warehouse, lines: int) -> None:
    if warehouse.dialect == "clickhouse":
        # sync_state is a ReplacingMergeTree read with FINAL: the new row replaces the old.
        warehouse.query(f"INSERT INTO sync_state (name, watermark) VALUES ('{GUARD}', {lines})")
    else:
        warehouse.query(
            "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES (?, ?)", [GUARD, lines]
        )
