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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import pyarrow as pa

GUARD = "order_totals"
COLUMNS = (
    *("order_id", "member_id", "paid_at", "paid_date"),
    *("amount", "refunded", "store_code", "channel"),
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM orders"


class Warehouse(Protocol):
    dialect: str

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...


def order_totals_current(warehouse: Warehouse) -> bool:
    """Whether `order_totals` covers exactly the order lines in the warehouse now."""
    rows = warehouse.query(
        "SELECT (SELECT count(*) FROM order_lines), "
        f"(SELECT max(watermark) FROM sync_state WHERE name = '{GUARD}')"
    )
    lines, covered = rows[0]
    return covered is not None and int(lines) == int(covered)


def rebuild_order_totals(warehouse: Warehouse) -> int:
    """Recompute every order's totals from its lines; returns the number of orders."""
    lines = int(warehouse.query("SELECT count(*) FROM order_lines")[0][0])
    warehouse.query("TRUNCATE TABLE order_totals")
    warehouse.query(f"INSERT INTO order_totals ({', '.join(COLUMNS)}) {_SELECT}")
    _set_guard(warehouse, lines)
    return int(warehouse.query("SELECT count(*) FROM order_totals")[0][0])


def ensure_order_totals(warehouse: Warehouse) -> bool:
    """Rebuild the totals when the guard fails; returns whether a rebuild ran."""
    if order_totals_current(warehouse):
        return False
    rebuild_order_totals(warehouse)
    return True


def retotal_orders(connection: Any, order_ids: Iterable[str], *, lines_before: int) -> None:
    """Inside the DuckDB transaction that appended lines: re-total their orders and move the
    guard, but only if the totals were current before the batch (else the end-of-sync rebuild
    does it)."""
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
        connection.execute(
            f"INSERT INTO order_totals ({', '.join(COLUMNS)}) {_SELECT} "
            "WHERE order_id IN (SELECT order_id FROM _retotal)"
        )
    finally:
        connection.unregister("_retotal")
    connection.execute(
        "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES (?, ?)",
        [GUARD, count_lines(connection)],
    )


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
