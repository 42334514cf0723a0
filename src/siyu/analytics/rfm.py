"""RFM eight classes (DESIGN §4.5) as one SQL query over the warehouse.

`rfm_query` selects `(member_id, rfm_class, r, f, m)` for members with at least one paid,
non-refunded order in the window. "High" compares with the mean over those members; to stay
exact with decimal money the comparison is done as `x * n` against `sum(x)` rather than
against a rounded floating-point mean. A threshold may instead be fixed (`r_cut`, `f_cut`,
`m_cut`), which brands use to keep classes stable from month to month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

import sqlglot
from sqlglot import exp

from siyu.analytics.paid_orders import paid_orders_sql


class RfmClass(StrEnum):
    IMPORTANT_VALUE = "important_value"
    IMPORTANT_DEVELOP = "important_develop"
    IMPORTANT_RETAIN = "important_retain"
    IMPORTANT_WINBACK = "important_winback"
    GENERAL_VALUE = "general_value"
    GENERAL_DEVELOP = "general_develop"
    GENERAL_RETAIN = "general_retain"
    GENERAL_WINBACK = "general_winback"


@dataclass(frozen=True, kw_only=True)
class RfmThresholds:
    """The window and the cut-offs; a cut-off of None means "the mean" (DESIGN §4.5)."""

    window_days: int = 365
    r_cut: int | None = None  # high R when d_last < r_cut
    f_cut: int | None = None  # high F when orders > f_cut
    m_cut: Decimal | None = None  # high M when spend > m_cut

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError("rfm threshold window_days must be >= 1")


def _class_case() -> str:
    arms = []
    for cls in RfmClass:
        important = cls.name.startswith("IMPORTANT")
        kind = cls.name.split("_", 1)[1]
        r_high = kind in ("VALUE", "DEVELOP")
        f_high = kind in ("VALUE", "RETAIN")
        arms.append(
            f"WHEN high_r = {str(r_high).upper()} AND high_f = {str(f_high).upper()} "
            f"AND high_m = {str(important).upper()} THEN '{cls.value}'"
        )
    return "CASE " + " ".join(arms) + " END"


def _high(column: str, compare: str, cut: object | None, total: str) -> str:
    if cut is not None:
        return f"({column} {compare} {cut})"
    return f"({column} * n {compare} {total})"


def rfm_sql(
    *, as_of: date, thresholds: RfmThresholds | None = None, orders_table: str = "orders"
) -> str:
    """DuckDB SQL selecting `(member_id, rfm_class, r, f, m)` as of `as_of`."""
    t = thresholds or RfmThresholds()
    m_cut = None if t.m_cut is None else f"CAST('{Decimal(t.m_cut)}' AS DECIMAL(18, 2))"
    return f"""
WITH paid AS ({paid_orders_sql(as_of=as_of, orders_table=orders_table)}),
rfm AS (
    SELECT member_id,
           MIN(d) AS r,
           COUNT(*) AS f,
           CAST(SUM(amount) AS DECIMAL(18, 2)) AS m
    FROM paid
    WHERE d < {int(t.window_days)}
    GROUP BY member_id
),
totals AS (
    SELECT COUNT(*) AS n, SUM(r) AS sum_r, SUM(f) AS sum_f, SUM(m) AS sum_m FROM rfm
),
flags AS (
    SELECT member_id, r, f, m,
           {_high("r", "<", t.r_cut, "sum_r")} AS high_r,
           {_high("f", ">", t.f_cut, "sum_f")} AS high_f,
           {_high("m", ">", m_cut, "sum_m")} AS high_m
    FROM rfm CROSS JOIN totals
)
SELECT member_id, {_class_case()} AS rfm_class, r, f, m
FROM flags
"""


def rfm_query(*, as_of: date, thresholds: RfmThresholds | None = None) -> exp.Expr:
    """The same query as a SQLGlot expression (embed it, or `.sql(dialect="clickhouse")`)."""
    return sqlglot.parse_one(rfm_sql(as_of=as_of, thresholds=thresholds), read="duckdb")
