"""Lifecycle stages (Yonghui's six, DESIGN §4.5) as one SQL query over the warehouse.

`lifecycle_query` selects `(member_id, stage)` for every member known as of the date: members
registered by the end of that day (or with no registration instant) and members that have
orders but no member row. `registered` is tested as "zero orders" rather than "no joined
row" because a ClickHouse LEFT JOIN fills misses with 0, not NULL.
Decisions where §4.5 is silent: a member registered after the as-of day is not counted; when
thresholds are configured so that a one-order member could also be `mature`, `introduced`
wins (it is the more specific statement about that member).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, tzinfo
from enum import StrEnum

import sqlglot
from sqlglot import exp

from siyu.analytics.paid_orders import (
    BUSINESS_TZ,
    date_literal,
    end_of_day_utc_literal,
    paid_orders_sql,
)
from siyu.warehouse.order_totals import RECENT_PAID_DATES


class LifecycleStage(StrEnum):
    REGISTERED = "registered"
    INTRODUCED = "introduced"
    GROWING = "growing"
    MATURE = "mature"
    SILENT = "silent"
    CHURNED = "churned"


@dataclass(frozen=True, kw_only=True)
class LifecycleThresholds:
    """Days and order counts that separate the stages; defaults are DESIGN §4.5."""

    active_days: int = 90  # d_last below this: introduced / growing / mature
    churn_days: int = 365  # d_last at or above this: churned (between: silent)
    mature_orders: int = 4  # orders within `mature_window_days` to be mature
    mature_window_days: int = 365

    def __post_init__(self) -> None:
        for name in ("active_days", "churn_days", "mature_orders", "mature_window_days"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"lifecycle threshold {name} must be >= 1")
        if self.churn_days < self.active_days:
            raise ValueError("lifecycle threshold churn_days must be >= active_days")


def lifecycle_sql(
    *,
    as_of: date,
    thresholds: LifecycleThresholds | None = None,
    tz: tzinfo = BUSINESS_TZ,
    orders_table: str = "orders",
    buyers_only: bool = False,
    from_member_stats: bool = False,
) -> str:
    """DuckDB SQL selecting `(member_id, stage)` as of the end of `as_of`.

    `buyers_only` leaves out the `registered` members (no paid order by then): the same stage
    for everyone else, without the pass over all members and the union with the buyers, which
    is most of the work at 10M members. Segments that name no `registered` stage use it.

    `from_member_stats` reads the per-member summary (`member_order_stats`) instead of grouping
    the orders; only for a caller that checked it is current and covers `as_of`
    (`MemberOrderStats.cover`). Ignored when `mature_orders` exceeds the dates it keeps."""
    t = thresholds or LifecycleThresholds()
    registered_before = end_of_day_utc_literal(as_of, tz)
    if from_member_stats and t.mature_orders <= RECENT_PAID_DATES:
        stats = _stats_from_summary(as_of, t)
    else:
        stats = f"""paid AS ({paid_orders_sql(as_of=as_of, orders_table=orders_table)}),
stats AS (
    SELECT member_id,
           COUNT(*) AS orders_ever,
           MIN(d) AS d_last,
           SUM(CASE WHEN d < {int(t.mature_window_days)} THEN 1 ELSE 0 END) AS orders_window
    FROM paid
    GROUP BY member_id
)"""
    # Buyers alone are exactly the `stats` rows: no pass over `members`, no join.
    rows = (
        "stats"
        if buyers_only
        else f"""(
    SELECT member_id FROM members
    WHERE registered_at IS NULL OR registered_at < {registered_before}
    UNION
    SELECT member_id FROM stats
) AS known LEFT JOIN stats ON stats.member_id = known.member_id"""
    )
    member_id = "stats.member_id" if buyers_only else "known.member_id"
    return f"""
WITH {stats}
SELECT {member_id} AS member_id,
       CASE
           WHEN COALESCE(stats.orders_ever, 0) = 0 THEN 'registered'
           WHEN stats.d_last >= {int(t.churn_days)} THEN 'churned'
           WHEN stats.d_last >= {int(t.active_days)} THEN 'silent'
           WHEN stats.orders_ever = 1 THEN 'introduced'
           WHEN stats.orders_window >= {int(t.mature_orders)} THEN 'mature'
           ELSE 'growing'
       END AS stage
FROM {rows}
"""


def _stats_from_summary(as_of: date, t: LifecycleThresholds) -> str:
    """The `stats` CTE from `member_order_stats`: `orders_window` is only ever compared with
    `mature_orders`, so it is that number when the member's `mature_orders`-th newest paid
    order lies inside the window, else 0 (fewer orders leave the element missing)."""
    as_of_sql = date_literal(as_of)
    nth = int(t.mature_orders)
    return f"""stats AS (
    SELECT member_id,
           orders_ever,
           DATE_DIFF('day', last_paid_date, {as_of_sql}) AS d_last,
           CASE WHEN ARRAY_LENGTH(recent_paid_dates) >= {nth}
                 AND DATE_DIFF('day', recent_paid_dates[{nth}], {as_of_sql})
                     < {int(t.mature_window_days)}
                THEN {nth} ELSE 0 END AS orders_window
    FROM member_order_stats
)"""


def lifecycle_query(
    *,
    as_of: date,
    thresholds: LifecycleThresholds | None = None,
    tz: tzinfo = BUSINESS_TZ,
    buyers_only: bool = False,
    from_member_stats: bool = False,
) -> exp.Expr:
    """The same query as a SQLGlot expression (embed it, or `.sql(dialect="clickhouse")`)."""
    sql = lifecycle_sql(
        as_of=as_of,
        thresholds=thresholds,
        tz=tz,
        buyers_only=buyers_only,
        from_member_stats=from_member_stats,
    )
    return sqlglot.parse_one(sql, read="duckdb")
