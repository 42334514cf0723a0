"""The warehouse tables, one definition for every engine.

Instants are stored as naive UTC timestamps (portable across DuckDB and ClickHouse); the business
date of an order (`paid_date`) is computed in the business time zone when it is synced, so
reports never convert time zones in SQL.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

WAREHOUSE_TABLES: dict[str, str] = {
    # One row per member that has not been merged away.
    "members": """
        member_id BIGINT PRIMARY KEY,
        gender VARCHAR,
        birthday DATE,
        registered_at TIMESTAMP,
        store_code VARCHAR,
        channel VARCHAR,
        name VARCHAR,
        updated_at TIMESTAMP
    """,
    # One row per order line, as imported; member_id follows merges.
    "order_lines": """
        line_key VARCHAR PRIMARY KEY,
        order_id VARCHAR NOT NULL,
        line_no INTEGER NOT NULL,
        member_id BIGINT NOT NULL,
        store_code VARCHAR,
        channel VARCHAR,
        paid_at TIMESTAMP NOT NULL,
        paid_date DATE NOT NULL,
        amount DECIMAL(14, 2) NOT NULL,
        status VARCHAR NOT NULL,
        category VARCHAR,
        sku VARCHAR
    """,
    # The `orders` view materialised (warehouse/order_totals.py keeps it; segments read it).
    "order_totals": """
        order_id VARCHAR PRIMARY KEY,
        member_id BIGINT NOT NULL,
        paid_at TIMESTAMP NOT NULL,
        paid_date DATE NOT NULL,
        amount DECIMAL(18, 2) NOT NULL,
        refunded BOOLEAN NOT NULL,
        store_code VARCHAR,
        channel VARCHAR,
        categories VARCHAR[] NOT NULL
    """,
    # Per member, their paid non-refunded orders in `order_totals` summarised (kept with it):
    # lifecycle segments read it instead of grouping every order (warehouse/order_totals.py).
    "member_order_stats": """
        member_id BIGINT PRIMARY KEY,
        orders_ever INTEGER NOT NULL,
        last_paid_date DATE NOT NULL,
        recent_paid_dates DATE[] NOT NULL
    """,
    # Behavioural events; properties as JSON text.
    "events": """
        event_id VARCHAR PRIMARY KEY,
        member_id BIGINT,
        type VARCHAR NOT NULL,
        occurred_at TIMESTAMP NOT NULL,
        properties VARCHAR
    """,
    # Current tags, written `group:name`.
    "member_tags": """
        member_id BIGINT NOT NULL,
        tag VARCHAR NOT NULL,
        PRIMARY KEY (member_id, tag)
    """,
    # Store dimension: the region and city a member's store belongs to (segments `region`).
    "stores": """
        store_code VARCHAR PRIMARY KEY,
        name VARCHAR,
        city VARCHAR,
        region VARCHAR
    """,
    # Who owns a member: the guide (staff_no) and store credited with them (segments).
    "member_owners": """
        member_id BIGINT PRIMARY KEY,
        owner_guide VARCHAR,
        owner_store VARCHAR
    """,
    # Customer-group clusters a member belongs to (filled by the WeCom work; may be empty).
    "member_group_clusters": """
        member_id BIGINT NOT NULL,
        cluster VARCHAR NOT NULL,
        PRIMARY KEY (member_id, cluster)
    """,
    # Coupons held by members as of the last sync; state available | redeemed | expired.
    "member_coupons": """
        coupon_id VARCHAR PRIMARY KEY,
        member_id BIGINT NOT NULL,
        template_code VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        expires_at TIMESTAMP
    """,
    # Where each incremental sync stopped (operational-store id watermark).
    "sync_state": """
        name VARCHAR PRIMARY KEY,
        watermark BIGINT NOT NULL
    """,
}


def column_names(table: str) -> list[str]:
    """The columns of a warehouse table, in schema order."""
    parsed = sqlglot.parse_one(f"CREATE TABLE {table} ({WAREHOUSE_TABLES[table]})", read="duckdb")
    assert isinstance(parsed.this, exp.Schema)
    return [item.name for item in parsed.this.expressions if isinstance(item, exp.ColumnDef)]


# Tables computed from the others and rebuilt whole when their columns change: an older
# warehouse file gets the new shape on open, and the next sync refills them.
DERIVED_TABLES = ("order_totals", "member_order_stats")


# Order-level rows (DESIGN §4.4/§4.5): one per order; refunded if any line is refunded;
# `categories` is the set of its lines' categories (NULLs left out). `where` filters lines
# before they are grouped (re-totalling a batch's orders must not group every line).
def orders_select(where: str = "TRUE") -> str:
    return f"""
SELECT
    order_id,
    any_value(member_id) AS member_id,
    min(paid_at) AS paid_at,
    min(paid_date) AS paid_date,
    sum(amount) AS amount,
    bool_or(status = 'refunded') AS refunded,
    any_value(store_code) AS store_code,
    any_value(channel) AS channel,
    list_sort(list_distinct(list(category))) AS categories
FROM order_lines
WHERE {where}
GROUP BY order_id
"""


ORDERS_VIEW = f"CREATE OR REPLACE VIEW orders AS {orders_select()}"
