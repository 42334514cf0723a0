"""The four reports of DESIGN §4.5 with the JSON shapes of §4.6, plus the console's extras.

Every report runs as SQL on the warehouse (one query each, pushed down to DuckDB or
ClickHouse). Thresholds come from `ReportConfig` (environment `SIYU_REPORT_*`, or passed in).
Decisions where §4.5 is silent:
- retention lists every cohort that has a first order up to the as-of date; a cohort's list
  holds only the months k = 1…12 that have ended by the as-of date (possibly none);
- repurchase `rate` is 0.0 when there are no buyers;
- RFM means are reported rounded to 4 decimals (m to 2); the classification itself is exact;
- month-over-month lifecycle flows compare the as-of date with the same day one month
  earlier (clamped to the month's last day); a member unknown at the earlier date flows from
  "new".
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

from siyu.analytics.lifecycle import LifecycleStage, LifecycleThresholds, lifecycle_sql
from siyu.analytics.paid_orders import BUSINESS_TZ, paid_orders_sql
from siyu.analytics.rfm import RfmClass, RfmThresholds, rfm_sql
from siyu.warehouse.order_totals import order_totals_current

RETENTION_MONTHS = 12


class Warehouse(Protocol):
    dialect: str

    def query(self, sql: str, parameters: Any = None) -> list[tuple[Any, ...]]: ...


def orders_table_of(warehouse: Warehouse) -> str:
    """`order_totals` while the warehouse sync keeps it current, else the `orders` view (which
    re-groups every order line on each read: ~10× slower at millions of lines)."""
    return "order_totals" if order_totals_current(warehouse) else "orders"


class ReportSettings(BaseSettings):
    """Report thresholds from `SIYU_REPORT_*` environment variables (defaults: §4.5)."""

    model_config = SettingsConfigDict(env_prefix="SIYU_REPORT_", extra="ignore")

    active_days: int = 90
    churn_days: int = 365
    mature_orders: int = 4
    mature_window_days: int = 365
    rfm_window_days: int = 365
    repurchase_window_days: int = 365
    retention_months: int = RETENTION_MONTHS

    def config(self) -> ReportConfig:
        return ReportConfig(
            lifecycle=LifecycleThresholds(
                active_days=self.active_days,
                churn_days=self.churn_days,
                mature_orders=self.mature_orders,
                mature_window_days=self.mature_window_days,
            ),
            rfm=RfmThresholds(window_days=self.rfm_window_days),
            repurchase_window_days=self.repurchase_window_days,
            retention_months=self.retention_months,
        )


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    lifecycle: LifecycleThresholds = field(default_factory=LifecycleThresholds)
    rfm: RfmThresholds = field(default_factory=RfmThresholds)
    repurchase_window_days: int = 365
    retention_months: int = RETENTION_MONTHS
    tz: tzinfo = BUSINESS_TZ


def lifecycle_report(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """How many members are in each of the six stages as of the date."""
    cfg = config or ReportConfig()
    sql = lifecycle_sql(
        as_of=as_of, thresholds=cfg.lifecycle, tz=cfg.tz, orders_table=orders_table_of(warehouse)
    )
    counts = dict(warehouse.query(f"SELECT stage, COUNT(*) FROM ({sql}) GROUP BY stage"))
    stages = {stage.value: int(counts.get(stage.value, 0)) for stage in LifecycleStage}
    return {"as_of": as_of.isoformat(), "stages": stages}


def rfm_report(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """The eight RFM classes with the means that split them."""
    cfg = config or ReportConfig()
    sql = rfm_sql(as_of=as_of, thresholds=cfg.rfm, orders_table=orders_table_of(warehouse))
    # one pass: per-class counts and sums; the means follow from the sums
    rows = warehouse.query(
        f"SELECT rfm_class, COUNT(*), SUM(r), SUM(f), SUM(m) FROM ({sql}) GROUP BY rfm_class"
    )
    counts = {row[0]: int(row[1]) for row in rows}
    n = sum(counts.values())
    sum_r, sum_f = sum(int(row[2]) for row in rows), sum(int(row[3]) for row in rows)
    sum_m = sum((Decimal(row[4]) for row in rows), Decimal(0))
    return {
        "as_of": as_of.isoformat(),
        "members": n,
        "means": {
            "r": _round(sum_r / n if n else None, 4),
            "f": _round(sum_f / n if n else None, 4),
            "m": _round(sum_m / n if n else None, 2),
        },
        "classes": {cls.value: int(counts.get(cls.value, 0)) for cls in RfmClass},
    }


def retention_report(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """Monthly first-order cohorts and the share ordering again in each later month."""
    cfg = config or ReportConfig()
    paid = paid_orders_sql(as_of=as_of, orders_table=orders_table_of(warehouse))
    rows = warehouse.query(
        f"""
WITH paid AS ({paid}),
cohort AS (
    SELECT member_id, DATE_TRUNC('month', MIN(paid_date)) AS cohort_month
    FROM paid GROUP BY member_id
),
active AS (SELECT DISTINCT member_id, DATE_TRUNC('month', paid_date) AS month FROM paid)
SELECT cohort.cohort_month, DATE_DIFF('month', cohort.cohort_month, active.month) AS k,
       COUNT(*) AS members
FROM cohort JOIN active ON active.member_id = cohort.member_id
GROUP BY 1, 2
"""
    )
    cells: dict[date, dict[int, int]] = {}
    for month, k, members in rows:
        cells.setdefault(_as_date(month), {})[int(k)] = int(members)
    cohorts = []
    for month in sorted(cells):
        size = cells[month].get(0, 0)
        ended = _ended_months_after(month, as_of, cfg.retention_months)
        retention = [round(cells[month].get(k, 0) / size, 4) for k in range(1, ended + 1)]
        cohorts.append({"month": month.strftime("%Y-%m"), "size": size, "retention": retention})
    return {"as_of": as_of.isoformat(), "cohorts": cohorts}


def repurchase_report(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """Share of buyers in the window who bought at least twice."""
    cfg = config or ReportConfig()
    window = int(cfg.repurchase_window_days)
    buyers, repeat = warehouse.query(
        f"""
WITH paid AS ({paid_orders_sql(as_of=as_of, orders_table=orders_table_of(warehouse))}),
per_member AS (SELECT member_id, COUNT(*) AS orders FROM paid WHERE d < {window} GROUP BY 1)
SELECT COUNT(*), COALESCE(SUM(CASE WHEN orders >= 2 THEN 1 ELSE 0 END), 0) FROM per_member
"""
    )[0]
    buyers, repeat = int(buyers), int(repeat)
    return {
        "as_of": as_of.isoformat(),
        "window_days": window,
        "buyers": buyers,
        "repeat_buyers": repeat,
        "rate": round(repeat / buyers, 4) if buyers else 0.0,
    }


# -- console extras ------------------------------------------------------------------------


def lifecycle_flows(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """Members moving between stages from one month earlier to the as-of date."""
    cfg = config or ReportConfig()
    before = one_month_earlier(as_of)
    table = orders_table_of(warehouse)
    then = lifecycle_sql(as_of=before, thresholds=cfg.lifecycle, tz=cfg.tz, orders_table=table)
    now = lifecycle_sql(as_of=as_of, thresholds=cfg.lifecycle, tz=cfg.tz, orders_table=table)
    rows = warehouse.query(
        f"""
SELECT COALESCE(earlier.stage, 'new') AS source, later.stage AS target, COUNT(*)
FROM ({now}) AS later LEFT JOIN ({then}) AS earlier ON earlier.member_id = later.member_id
GROUP BY 1, 2 ORDER BY 1, 2
"""
    )
    flows = [{"from": src, "to": dst, "members": int(n)} for src, dst, n in rows]
    return {"as_of": as_of.isoformat(), "previous": before.isoformat(), "flows": flows}


def rfm_table(
    *, warehouse: Warehouse, as_of: date, config: ReportConfig | None = None
) -> dict[str, Any]:
    """The eight classes with member counts, spend and their shares of the total."""
    cfg = config or ReportConfig()
    sql = rfm_sql(as_of=as_of, thresholds=cfg.rfm, orders_table=orders_table_of(warehouse))
    found = {
        cls: (int(n), Decimal(spend or 0))
        for cls, n, spend in warehouse.query(
            f"SELECT rfm_class, COUNT(*), SUM(m) FROM ({sql}) GROUP BY rfm_class"
        )
    }
    members = sum(n for n, _ in found.values())
    spend = sum((s for _, s in found.values()), Decimal(0))
    rows = []
    for cls in RfmClass:
        n, s = found.get(cls.value, (0, Decimal(0)))
        rows.append(
            {
                "class": cls.value,
                "members": n,
                "member_share": round(n / members, 4) if members else 0.0,
                "spend": str(s.quantize(Decimal("0.01"))),
                "spend_share": float(round(s / spend, 4)) if spend else 0.0,
            }
        )
    return {"as_of": as_of.isoformat(), "members": members, "spend": str(spend), "rows": rows}


def repurchase_trend(
    *, warehouse: Warehouse, as_of: date, months: int = 12, config: ReportConfig | None = None
) -> list[dict[str, Any]]:
    """The repurchase rate at the end of each of the last `months` months, then at the as-of."""
    points = [_month_end(as_of, back) for back in range(months, 0, -1)] + [as_of]
    return [repurchase_report(warehouse=warehouse, as_of=p, config=config) for p in points]


# -- calendar helpers ----------------------------------------------------------------------


def one_month_earlier(day: date) -> date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(day: date, back: int) -> date:
    """Last day of the month `back` months before `day`'s month."""
    index = day.year * 12 + day.month - 1 - back
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _ended_months_after(cohort: date, as_of: date, limit: int) -> int:
    """How many of the months after the cohort month have ended by the as-of day."""
    day_after = as_of + timedelta(days=1)
    # A month has ended when the day after the as-of date is in a later month.
    ended = (day_after.year * 12 + day_after.month) - (cohort.year * 12 + cohort.month) - 1
    return max(0, min(limit, ended))


def _as_date(value: Any) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value  # type: ignore[no-any-return]


def _round(value: Any, digits: int) -> float:
    return 0.0 if value is None else round(float(value), digits)
