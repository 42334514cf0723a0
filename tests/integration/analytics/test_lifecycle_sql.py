"""Lifecycle stages as the SQL computes them on DuckDB (DESIGN §4.5), edge by edge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from siyu.analytics.lifecycle import LifecycleThresholds, lifecycle_query, lifecycle_sql
from siyu.warehouse.duckdb import DuckDBWarehouse
from tests.factories.warehouse import Line, add_lines, add_member, days_before

AS_OF = date(2026, 6, 18)
TEN = Decimal("10.00")


@pytest.fixture
def warehouse() -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(":memory:")
    yield wh
    wh.close()


def stages(warehouse: DuckDBWarehouse, **kwargs: object) -> dict[int, str]:
    return dict(warehouse.query(lifecycle_sql(as_of=AS_OF, **kwargs)))  # type: ignore[arg-type]


def orders(member_id: int, *days: int) -> list[Line]:
    return [
        Line(f"m{member_id}-{i}", member_id, days_before(AS_OF, d), TEN) for i, d in enumerate(days)
    ]


def test_member_without_orders_is_registered(warehouse: DuckDBWarehouse) -> None:
    add_member(warehouse, 1)
    assert stages(warehouse) == {1: "registered"}


def test_member_registered_after_as_of_is_not_counted(warehouse: DuckDBWarehouse) -> None:
    add_member(warehouse, 1, registered=date(2026, 6, 19))
    assert stages(warehouse) == {}


def test_one_order_89_days_ago_is_introduced_and_90_days_is_silent(
    warehouse: DuckDBWarehouse,
) -> None:
    add_lines(warehouse, orders(1, 89) + orders(2, 90))
    assert stages(warehouse) == {1: "introduced", 2: "silent"}


def test_last_order_exactly_365_days_ago_is_churned(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, orders(1, 364) + orders(2, 365))
    assert stages(warehouse) == {1: "silent", 2: "churned"}


def test_four_orders_in_a_year_is_mature_three_is_growing(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, orders(1, 0, 100, 200, 364) + orders(2, 0, 100, 365, 400))
    assert stages(warehouse) == {1: "mature", 2: "growing"}


def test_multi_line_order_counts_once(warehouse: DuckDBWarehouse) -> None:
    add_lines(
        warehouse,
        [Line("A", 1, AS_OF, TEN, line_no=1), Line("A", 1, AS_OF, TEN, line_no=2)],
    )
    assert stages(warehouse) == {1: "introduced"}


def test_refund_row_removes_the_whole_order(warehouse: DuckDBWarehouse) -> None:
    add_member(warehouse, 1)
    add_lines(
        warehouse,
        [
            Line("A", 1, days_before(AS_OF, 10), TEN),
            Line("B", 1, days_before(AS_OF, 5), TEN),
            Line("B", 1, days_before(AS_OF, 5), TEN, line_no=2, status="refunded"),
        ],
    )
    assert stages(warehouse) == {1: "introduced"}


def test_orders_after_as_of_are_ignored(warehouse: DuckDBWarehouse) -> None:
    add_member(warehouse, 1)
    add_lines(warehouse, [Line("A", 1, date(2026, 6, 19), TEN)])
    assert stages(warehouse) == {1: "registered"}


def test_orders_without_member_row_still_get_a_stage(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, orders(7, 3, 4))
    assert stages(warehouse) == {7: "growing"}


def test_thresholds_are_parameters(warehouse: DuckDBWarehouse) -> None:
    add_lines(warehouse, orders(1, 40) + orders(2, 0, 1))
    thresholds = LifecycleThresholds(active_days=30, churn_days=60, mature_orders=2)
    assert stages(warehouse, thresholds=thresholds) == {1: "silent", 2: "mature"}


def test_query_transpiles_to_clickhouse() -> None:
    sql = lifecycle_query(as_of=AS_OF).sql(dialect="clickhouse")
    assert "UNION DISTINCT" in sql
    assert "'2026-06-18 16:00:00'" in sql  # end of the Shanghai day, in UTC
