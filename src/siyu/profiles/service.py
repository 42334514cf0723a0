"""Member profiles: computed traits kept in the warehouse table `member_profiles`.

`refresh_profiles` recomputes only the members the warehouse sync touched since the last
refresh (the sync's `member_changes` log), or everyone with `full=True`. A row stores what does
not depend on the as-of date (lifetime facts, favourites, KOC counts) and the member's paid,
non-refunded orders as two parallel lists (dates, amounts). `get_profile` reads that one row by
primary key and derives the as-of traits from the lists in Python, so it answers for any date
in milliseconds and agrees with the reports of §4.5 (the RFM means come from one cached
aggregate per as-of date and sync run).

Decisions: favourite category/store = the one in most orders (ties: more spend, then name),
over all synced orders; average order value = lifetime spend / lifetime orders as of the date;
KOC score hook = `shares + 3 × invites` over the member's `share` / `invite` events, weights in
`KocWeights` (replace `koc_score` to plug in another model).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from siyu.analytics.lifecycle import LifecycleThresholds
from siyu.analytics.rfm import RfmThresholds, rfm_sql
from siyu.profiles.traits import (
    Profile,
    classify_rfm,
    koc_score,
    lifecycle_stage,
    window_totals,
)
from siyu.warehouse.duckdb import DuckDBWarehouse
from siyu.warehouse.sync import ensure_sync_tables, read_watermark

PROFILE_TABLES = {
    "member_profiles": """
        member_id BIGINT PRIMARY KEY,
        first_order_date DATE,
        last_order_date DATE,
        orders_lifetime INTEGER NOT NULL,
        spend_lifetime DECIMAL(18, 2) NOT NULL,
        favourite_category VARCHAR,
        favourite_store VARCHAR,
        order_dates DATE[],
        order_amounts DECIMAL(18, 2)[],
        shares INTEGER NOT NULL,
        invites INTEGER NOT NULL,
        refreshed_seq BIGINT NOT NULL
    """,
    "profile_rfm_totals": """
        as_of DATE NOT NULL,
        lines_mark BIGINT NOT NULL,
        merges_mark BIGINT NOT NULL,
        n BIGINT NOT NULL,
        sum_r BIGINT,
        sum_f BIGINT,
        sum_m DECIMAL(38, 2),
        PRIMARY KEY (as_of, lines_mark, merges_mark)
    """,
}


@dataclass(frozen=True)
class RefreshResult:
    members: int
    full: bool
    seq: int


def ensure_profile_tables(warehouse: DuckDBWarehouse) -> None:
    ensure_sync_tables(warehouse)
    for table, columns in PROFILE_TABLES.items():
        warehouse.connection.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def refresh_profiles(*, warehouse: DuckDBWarehouse, full: bool = False) -> RefreshResult:
    """Recompute the profiles of members touched since the last refresh (or all of them)."""
    ensure_profile_tables(warehouse)
    done = read_watermark(warehouse, "profiles")
    seq = int(warehouse.query("SELECT COALESCE(MAX(seq), 0) FROM member_changes")[0][0])
    scope = (
        ""
        if full
        else (f"WHERE member_id IN (SELECT member_id FROM member_changes WHERE seq > {done})")
    )
    connection = warehouse.connection
    connection.execute("BEGIN TRANSACTION")
    try:
        target = f"SELECT DISTINCT member_id FROM ({_universe_sql()}) AS u {scope}"
        connection.execute(f"CREATE OR REPLACE TEMP TABLE _profile_scope AS {target}")
        delete_scope = "" if full else "WHERE member_id IN (SELECT member_id FROM _profile_scope)"
        connection.execute(f"DELETE FROM member_profiles {delete_scope}")
        connection.execute(_insert_sql(seq))
        # Members merged away since the last refresh leave no orders and no member row.
        connection.execute(
            f"DELETE FROM member_profiles WHERE member_id NOT IN ({_universe_sql()})"
        )
        count = int(connection.execute("SELECT COUNT(*) FROM _profile_scope").fetchone()[0])  # type: ignore[index]
        connection.execute(
            "INSERT OR REPLACE INTO sync_state (name, watermark) VALUES ('profiles', ?)", [seq]
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return RefreshResult(members=count, full=full, seq=seq)


def _universe_sql() -> str:
    return "SELECT member_id FROM members UNION SELECT member_id FROM order_lines"


def _insert_sql(seq: int) -> str:
    return f"""
INSERT INTO member_profiles
WITH scope AS (SELECT member_id FROM _profile_scope),
paid AS (
    SELECT o.member_id, o.order_id, o.paid_date, o.amount, o.store_code
    FROM orders o JOIN scope USING (member_id) WHERE NOT o.refunded
),
facts AS (
    SELECT member_id, MIN(paid_date) AS first_order_date, MAX(paid_date) AS last_order_date,
           COUNT(*) AS orders_lifetime, SUM(amount) AS spend_lifetime,
           LIST(paid_date ORDER BY paid_date, order_id) AS order_dates,
           LIST(CAST(amount AS DECIMAL(18, 2)) ORDER BY paid_date, order_id) AS order_amounts
    FROM paid GROUP BY member_id
),
categories AS (
    SELECT l.member_id, l.category, COUNT(DISTINCT l.order_id) AS n, SUM(l.amount) AS spend
    FROM order_lines l JOIN paid p ON p.order_id = l.order_id
    WHERE l.category IS NOT NULL AND l.status = 'paid'
    GROUP BY 1, 2
),
fav_category AS (
    SELECT member_id, category FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY member_id ORDER BY n DESC, spend DESC, category) AS rank
        FROM categories) WHERE rank = 1
),
stores AS (
    SELECT member_id, store_code, COUNT(*) AS n, SUM(amount) AS spend
    FROM paid WHERE store_code IS NOT NULL GROUP BY 1, 2
),
fav_store AS (
    SELECT member_id, store_code FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY member_id ORDER BY n DESC, spend DESC, store_code) AS rank
        FROM stores) WHERE rank = 1
),
koc AS (
    SELECT e.member_id,
           SUM(CASE WHEN e.type = 'share' THEN 1 ELSE 0 END) AS shares,
           SUM(CASE WHEN e.type = 'invite' THEN 1 ELSE 0 END) AS invites
    FROM events e JOIN scope USING (member_id)
    WHERE e.type IN ('share', 'invite') GROUP BY 1
)
SELECT scope.member_id, facts.first_order_date, facts.last_order_date,
       COALESCE(facts.orders_lifetime, 0), COALESCE(facts.spend_lifetime, 0),
       fav_category.category, fav_store.store_code,
       COALESCE(facts.order_dates, []), COALESCE(facts.order_amounts, []),
       COALESCE(koc.shares, 0), COALESCE(koc.invites, 0), {int(seq)}
FROM scope
LEFT JOIN facts USING (member_id)
LEFT JOIN fav_category USING (member_id)
LEFT JOIN fav_store USING (member_id)
LEFT JOIN koc USING (member_id)
"""


def get_profile(
    *,
    warehouse: DuckDBWarehouse,
    member_id: int,
    as_of: date,
    lifecycle: LifecycleThresholds | None = None,
    rfm: RfmThresholds | None = None,
) -> Profile | None:
    """The member's traits as of the date, or None when the member has no profile row."""
    ensure_profile_tables(warehouse)
    rows = warehouse.query(
        "SELECT favourite_category, favourite_store, order_dates, order_amounts, shares, invites,"
        " FROM member_profiles WHERE member_id = ?",
        [member_id],
    )
    if not rows:
        return None
    category, store, dates, amounts, shares, invites = rows[0]
    orders = [(d, Decimal(a)) for d, a in zip(dates, amounts, strict=True) if d <= as_of]
    rfm_t = rfm or RfmThresholds()
    window = window_totals(orders, as_of=as_of, window_days=365)
    rfm_window = window_totals(orders, as_of=as_of, window_days=rfm_t.window_days)
    lifetime_spend = sum((a for _, a in orders), Decimal(0))
    last = orders[-1][0] if orders else None
    return Profile(
        member_id=member_id,
        as_of=as_of,
        first_order_date=orders[0][0] if orders else None,
        last_order_date=last,
        orders_lifetime=len(orders),
        spend_lifetime=lifetime_spend,
        orders_365=window.orders,
        spend_365=window.spend,
        average_order_value=(lifetime_spend / len(orders)).quantize(Decimal("0.01"))
        if orders
        else None,
        favourite_category=category,
        favourite_store=store,
        days_since_last_order=None if last is None else (as_of - last).days,
        lifecycle_stage=lifecycle_stage(orders, as_of=as_of, thresholds=lifecycle),
        rfm_class=classify_rfm(
            rfm_window, thresholds=rfm_t, totals=_rfm_totals(warehouse, as_of, rfm_t)
        )
        if rfm_window.orders
        else None,
        koc_score=koc_score(shares=int(shares), invites=int(invites)),
    )


def _rfm_totals(
    warehouse: DuckDBWarehouse, as_of: date, thresholds: RfmThresholds
) -> tuple[int, int, int, Decimal]:
    """(n, Σr, Σf, Σm) over all RFM members as of the date, cached until the next sync moves
    the order-line or merge watermark."""
    cacheable = thresholds == RfmThresholds()
    marks = [read_watermark(warehouse, "order_lines"), read_watermark(warehouse, "member_merges")]
    if cacheable:
        found = warehouse.query(
            "SELECT n, sum_r, sum_f, sum_m FROM profile_rfm_totals"
            " WHERE as_of = ? AND lines_mark = ? AND merges_mark = ?",
            [as_of, *marks],
        )
        if found:
            return _totals(found[0])
    members = rfm_sql(as_of=as_of, thresholds=thresholds)
    row = warehouse.query(f"SELECT COUNT(*), SUM(r), SUM(f), SUM(m) FROM ({members})")[0]
    if cacheable:
        warehouse.connection.execute(
            "INSERT OR REPLACE INTO profile_rfm_totals VALUES (?, ?, ?, ?, ?, ?, ?)",
            [as_of, *marks, *row],
        )
    return _totals(row)


def _totals(row: tuple[Any, ...]) -> tuple[int, int, int, Decimal]:
    n, sum_r, sum_f, sum_m = row
    return int(n), int(sum_r or 0), int(sum_f or 0), Decimal(sum_m or 0)
