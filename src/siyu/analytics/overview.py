"""The console overview's numbers: members, orders, GMV, repurchase, GMV by month.

Orders and GMV count paid, non-refunded orders (DESIGN §4.5) from the warehouse `orders`
view; the member count comes from the operational store (live members: not merged away, not
erased). GMV by month uses the business-timezone `paid_date`, the last `months` months up to
the as-of date, months without orders shown as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from siyu.analytics.paid_orders import date_literal, paid_orders_sql
from siyu.analytics.reports import repurchase_report
from siyu.identity.models import Member
from siyu.warehouse.duckdb import DuckDBWarehouse


@dataclass(frozen=True)
class Overview:
    as_of: date
    members: int
    orders: int
    gmv: Decimal
    repurchase_rate: float | None
    gmv_by_month: list[tuple[str, Decimal]]


def overview(
    *,
    session_factory: sessionmaker[Session],
    warehouse: DuckDBWarehouse,
    as_of: date,
    months: int = 12,
) -> Overview:
    """Headline KPIs as of a business date; the warehouse must already be synced."""
    with session_factory() as session:
        members = session.scalar(
            select(func.count())
            .select_from(Member)
            .where(Member.merged_into_id.is_(None), Member.erased_at.is_(None))
        )
    if not _has_orders_view(warehouse):
        return Overview(as_of, int(members or 0), 0, Decimal(0), None, _months(as_of, months, {}))
    orders, gmv = warehouse.query(
        f"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM ({paid_orders_sql(as_of=as_of)})"
    )[0]
    first_month = _month_start(as_of, back=months - 1)
    rows = warehouse.query(
        f"SELECT strftime(paid_date, '%Y-%m') AS month, SUM(amount) FROM "
        f"({paid_orders_sql(as_of=as_of)}) WHERE paid_date >= {date_literal(first_month)} "
        "GROUP BY 1"
    )
    by_month = {str(month): Decimal(total) for month, total in rows}
    rate = repurchase_report(warehouse=warehouse, as_of=as_of)["rate"] if orders else None
    return Overview(
        as_of=as_of,
        members=int(members or 0),
        orders=int(orders),
        gmv=Decimal(gmv).quantize(Decimal("0.01")),
        repurchase_rate=rate,
        gmv_by_month=_months(as_of, months, by_month),
    )


def _has_orders_view(warehouse: DuckDBWarehouse) -> bool:
    rows = warehouse.query(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'orders'"
    )
    return bool(rows[0][0])


def _month_start(day: date, *, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _months(as_of: date, months: int, totals: dict[str, Decimal]) -> list[tuple[str, Decimal]]:
    keys = [_month_start(as_of, back=back).strftime("%Y-%m") for back in range(months - 1, -1, -1)]
    return [(key, totals.get(key, Decimal(0))) for key in keys]
