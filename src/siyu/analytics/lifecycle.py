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

from siyu.analytics.paid_orders import BUSINESS_TZ, end_of_day_utc_literal, paid_orders_sql


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
) -> str:
    """DuckDB SQL selecting `(member_id, stage)` as of the end of `as_of`.

    `buyers_only` leaves out the `registered` members (no paid order by then): the same stage
    for everyone else, without the pass over all members and the union with the buyers, which
    is most of the work at 10M members. Segments that name no `registered` stage use it."""
    t = thresholds or LifecycleThresholds()
    registered_before = end_of_day_utc_literal(as_of, tz)
    known = (
        "known AS (SELECT member_id FROM stats)"
        if buyers_only
        else f"""known AS (
    SELECT member_id FROM members
    WHERE registered_at IS NULL OR registered_at < {registered_before}
    UNION
    SELECT member_id FROM stats
)"""
    )
    return f"""
WITH paid AS ({paid_orders_sql(as_of=as_of, orders_table=orders_table)}),
stats AS (
    SELECT member_id,
           COUNT(*) AS orders_ever,
           MIN(d) AS d_last,
           SUM(CASE WHEN d < {int(t.mature_window_days)} THEN 1 ELSE 0 END) AS orders_window
    FROM paid
    GROUP BY member_id
),
{known}
SELECT known.member_id AS member_id,
       CASE
           WHEN COALESCE(stats.orders_ever, 0) = 0 THEN 'registered'
           WHEN stats.d_last >= {int(t.churn_days)} THEN 'churned'
           WHEN stats.d_last >= {int(t.active_days)} THEN 'silent'
           WHEN stats.orders_ever = 1 THEN 'introduced'
           WHEN stats.orders_window >= {int(t.mature_orders)} THEN 'mature'
           ELSE 'growing'
       END AS stage
FROM known LEFT JOIN stats ON stats.member_id = known.member_id
"""


def lifecycle_query(
    *,
    as_of: date,
    thresholds: LifecycleThresholds | None = None,
    tz: tzinfo = BUSINESS_TZ,
    buyers_only: bool = False,
) -> exp.Expr:
    """The same query as a SQLGlot expression (embed it, or `.sql(dialect="clickhouse")`)."""
    return sqlglot.parse_one(
        lifecycle_sql(as_of=as_of, thresholds=thresholds, tz=tz, buyers_only=buyers_only),
        read="duckdb",
    )
