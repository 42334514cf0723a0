"""Opening a warehouse written by an older siyu: derived tables take the new shape."""

from __future__ import annotations

from pathlib import Path

import duckdb

from siyu.warehouse.clickhouse import ClickHouseWarehouse
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.order_totals import order_totals_current
from siyu.warehouse.schema import column_names

OLD_ORDER_TOTALS = """CREATE TABLE order_totals (order_id VARCHAR PRIMARY KEY,
    member_id BIGINT NOT NULL, paid_at TIMESTAMP NOT NULL, paid_date DATE NOT NULL,
    amount DECIMAL(18, 2) NOT NULL, refunded BOOLEAN NOT NULL, store_code VARCHAR,
    channel VARCHAR)"""


def test_an_old_order_totals_table_is_rebuilt_on_open_and_its_guard_fails(tmp_path: Path) -> None:
    # Given a warehouse file whose order_totals predates `categories`, with a current guard
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute(OLD_ORDER_TOTALS)
        old.execute("CREATE TABLE sync_state (name VARCHAR PRIMARY KEY, watermark BIGINT)")
        old.execute("INSERT INTO sync_state VALUES ('order_totals', 0), ('order_lines', 5)")
    # When this version opens it
    warehouse = DuckDBWarehouse(path)
    try:
        columns = warehouse.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'order_totals' ORDER BY ordinal_position"
        )
        # Then the table has today's columns, and readers fall back until the sync rebuilds it
        assert [row[0] for row in columns] == column_names("order_totals")
        assert not order_totals_current(warehouse)
        assert warehouse.query("SELECT watermark FROM sync_state WHERE name = 'order_lines'") == [
            (5,)
        ]
    finally:
        warehouse.close()


def test_clickhouse_replaces_an_old_order_totals_table_on_open() -> None:
    # Given a chDB warehouse whose order_totals was created without `categories`
    warehouse = ClickHouseWarehouse.in_process()
    try:
        warehouse.query("DROP TABLE order_totals")
        warehouse.query(
            "CREATE TABLE order_totals (order_id String, member_id Int64) "
            "ENGINE = ReplacingMergeTree ORDER BY order_id"
        )
        # When the schema is ensured again (as on the next start)
        warehouse.ensure_schema()
        # Then the table has today's columns
        columns = warehouse.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'order_totals' ORDER BY position"
        )
        assert [row[0] for row in columns] == column_names("order_totals")
    finally:
        warehouse.close()
